//! The image files `tlrun predict` is given: files as named, folders searched recursively, and
//! a folder of class sub-folders read as labelled (for accuracy on a held-out set).

use std::path::{Path, PathBuf};

use super::ImageFolder;
use crate::diagnostics::{Code, Diagnostic};

/// Files to predict, in a fixed order, with the true class (an index into the model's classes)
/// when the input is one labelled folder.
#[derive(Debug, Clone, PartialEq)]
pub struct InputFiles {
    pub files: Vec<PathBuf>,
    pub truth: Option<Vec<usize>>,
}

/// Extensions searched for inside folders (files named on the command line are tried whatever
/// their name: the decoder reads the content).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

impl InputFiles {
    /// One folder whose sub-folders are all classes of the model (and hold images) is labelled,
    /// in `ImageFolder`'s order (class, then file name) — the order a run's evaluation reads a
    /// valid folder in, so the same batches give the same bits. Anything else is unlabelled:
    /// each path in the order given, a folder's files sorted, recursively.
    pub fn gather(paths: &[PathBuf], classes: &[String]) -> Result<InputFiles, Diagnostic> {
        if let [folder] = paths {
            if let Some(labelled) = labelled(folder, classes) {
                return Ok(labelled);
            }
        }
        let mut files = Vec::new();
        for path in paths {
            if path.is_dir() {
                walk(path, &mut files)?;
            } else if path.exists() {
                files.push(path.clone());
            } else {
                return Err(unusable(format!("input {} does not exist", path.display())));
            }
        }
        if files.is_empty() {
            return Err(unusable(format!(
                "no .png, .jpg or .jpeg file in {}",
                paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
            )));
        }
        Ok(InputFiles { files, truth: None })
    }
}

fn labelled(folder: &Path, classes: &[String]) -> Option<InputFiles> {
    let found = ImageFolder::scan(folder).ok()?;
    if !found.classes.iter().all(|class| classes.contains(class)) {
        return None;
    }
    let label_of: Vec<usize> = found.classes.iter().map(|class| classes.iter().position(|known| known == class).unwrap_or(0)).collect();
    let (files, truth) = found.items.into_iter().map(|(path, label)| (path, label_of[label])).unzip();
    Some(InputFiles { files, truth: Some(truth) })
}

/// Image files under `folder`, sorted by name at each level, hidden entries left out.
fn walk(folder: &Path, files: &mut Vec<PathBuf>) -> Result<(), Diagnostic> {
    let unreadable = |error: std::io::Error| unusable(format!("folder {} cannot be read: {error}", folder.display()));
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder)
        .map_err(unreadable)?
        .filter_map(Result::ok)
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            walk(&path, files)?;
        } else if path.extension().and_then(|extension| extension.to_str()).is_some_and(|extension| {
            IMAGE_EXTENSIONS.iter().any(|known| extension.eq_ignore_ascii_case(known))
        }) {
            files.push(path);
        }
    }
    Ok(())
}

fn unusable(message: String) -> Diagnostic {
    Diagnostic::new(Code::PredictInputUnusable, message).with_help("give image files or folders of them (searched recursively for .png, .jpg, .jpeg)")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn touch(path: &Path) {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, b"x").unwrap();
    }

    #[test]
    fn a_folder_of_class_folders_is_labelled_in_image_folder_order() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["b/2.png", "b/1.png", "a/9.png"] {
            touch(&dir.path().join(file));
        }
        let classes = vec!["b".to_string(), "a".to_string(), "c".to_string()];
        let inputs = InputFiles::gather(&[dir.path().to_path_buf()], &classes).unwrap();
        let names: Vec<_> = inputs.files.iter().map(|path| path.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
        assert_eq!(names, ["a/9.png", "b/1.png", "b/2.png"]);
        assert_eq!(inputs.truth, Some(vec![1, 0, 0]));
    }

    #[test]
    fn other_folders_are_searched_recursively_and_unlabelled() {
        let dir = tempfile::tempdir().unwrap();
        for file in ["x/deep/2.JPG", "x/1.png", "top.jpeg", "notes.txt", ".hidden/3.png"] {
            touch(&dir.path().join(file));
        }
        let inputs = InputFiles::gather(&[dir.path().to_path_buf()], &["a".to_string()]).unwrap();
        let names: Vec<_> = inputs.files.iter().map(|path| path.strip_prefix(dir.path()).unwrap().display().to_string()).collect();
        assert_eq!(names, ["top.jpeg", "x/1.png", "x/deep/2.JPG"]);
        assert_eq!(inputs.truth, None);
    }

    #[test]
    fn a_missing_path_or_an_imageless_folder_is_tl4015() {
        let dir = tempfile::tempdir().unwrap();
        let missing = InputFiles::gather(&[dir.path().join("nope")], &[]).unwrap_err();
        assert_eq!(missing.code, Code::PredictInputUnusable);
        assert!(missing.message.contains("nope"), "{}", missing.message);
        touch(&dir.path().join("readme.txt"));
        let empty = InputFiles::gather(&[dir.path().to_path_buf()], &[]).unwrap_err();
        assert_eq!(empty.code, Code::PredictInputUnusable);
    }
}
