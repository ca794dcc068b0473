//! The `<root>/<class>/<image>` layout: which files are images and which class each belongs to.

use std::path::{Path, PathBuf};

use crate::diagnostics::{Code, Diagnostic};

/// Every image under a folder, labelled by its class folder. Classes are sorted by name and
/// items by class then file name, so labels and order never depend on the file system.
#[derive(Debug, Clone, PartialEq)]
pub struct ImageFolder {
    pub classes: Vec<String>,
    /// Path of each image and the index of its class in `classes`.
    pub items: Vec<(PathBuf, usize)>,
}

/// Extensions the decoder understands (the `image` crate is built with png and jpeg only).
const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

impl ImageFolder {
    pub fn scan(root: &Path) -> Result<ImageFolder, Diagnostic> {
        if !root.is_dir() {
            let what = if root.exists() { "is not a folder" } else { "does not exist" };
            return Err(Diagnostic::new(
                Code::DataFolderMissing,
                format!("data folder `{}` {what}", root.display()),
            )
            .with_help("point the recipe at a folder laid out as <folder>/<class>/<image>.png"));
        }
        let class_folders: Vec<(String, PathBuf)> = visible_entries(root)?
            .into_iter()
            .filter(|(_, path)| path.is_dir())
            .collect();
        if class_folders.is_empty() {
            return Err(Diagnostic::new(
                Code::EmptyClass,
                format!("data folder `{}` has no class folders", root.display()),
            )
            .with_help("put each class's images in a sub-folder named after the class"));
        }
        let mut classes = Vec::with_capacity(class_folders.len());
        let mut items = Vec::new();
        for (label, (class, folder)) in class_folders.into_iter().enumerate() {
            let images: Vec<PathBuf> = visible_entries(&folder)?
                .into_iter()
                .map(|(_, path)| path)
                .filter(|path| path.is_file() && has_image_extension(path))
                .collect();
            if images.is_empty() {
                return Err(Diagnostic::new(
                    Code::EmptyClass,
                    format!("class folder `{}` has no images", folder.display()),
                )
                .with_help("add .png or .jpg images to it, or remove the folder"));
            }
            items.extend(images.into_iter().map(|path| (path, label)));
            classes.push(class);
        }
        Ok(ImageFolder { classes, items })
    }

    /// Scan a validation folder, labelling it with the training folder's class order so that
    /// label `i` means the same class in both.
    pub fn scan_with_classes(root: &Path, classes: &[String]) -> Result<ImageFolder, Diagnostic> {
        let found = ImageFolder::scan(root)?;
        if let Some(missing) = classes.iter().find(|class| !found.classes.contains(class)) {
            return Err(Diagnostic::new(
                Code::ClassMissingFromValid,
                format!("class `{missing}` is in train but has no folder in valid `{}`", root.display()),
            )
            .with_help(format!("add `{}` with images of that class", root.join(missing).display())));
        }
        if let Some(extra) = found.classes.iter().find(|class| !classes.contains(class)) {
            return Err(Diagnostic::new(
                Code::ClassMissingFromValid,
                format!("class `{extra}` in valid `{}` is not in train", root.display()),
            )
            .with_help("the model can only predict train's classes: remove the folder or add it to train"));
        }
        // Every found class is in `classes` (checked above), so each lookup succeeds.
        let train_label: Vec<usize> = found
            .classes
            .iter()
            .map(|class| classes.iter().position(|c| c == class).unwrap_or(0))
            .collect();
        let items = found.items.into_iter().map(|(path, label)| (path, train_label[label])).collect();
        Ok(ImageFolder { classes: classes.to_vec(), items })
    }

    pub fn len(&self) -> usize {
        self.items.len()
    }

    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// Entries of a folder, sorted by name, without hidden ones (`.DS_Store`, `.git`, editor files).
fn visible_entries(folder: &Path) -> Result<Vec<(String, PathBuf)>, Diagnostic> {
    let unreadable = |error: std::io::Error| {
        Diagnostic::new(
            Code::DataFolderMissing,
            format!("data folder `{}` cannot be read: {error}", folder.display()),
        )
    };
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(folder).map_err(unreadable)? {
        let entry = entry.map_err(unreadable)?;
        let name = entry.file_name().to_string_lossy().into_owned();
        if !name.starts_with('.') {
            entries.push((name, entry.path()));
        }
    }
    entries.sort();
    Ok(entries)
}

fn has_image_extension(path: &Path) -> bool {
    path.extension()
        .and_then(|ext| ext.to_str())
        .is_some_and(|ext| IMAGE_EXTENSIONS.iter().any(|known| ext.eq_ignore_ascii_case(known)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn touch(path: &Path) {
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(path, b"x").unwrap();
    }

    fn names(folder: &ImageFolder) -> Vec<(String, usize)> {
        folder
            .items
            .iter()
            .map(|(path, label)| (path.file_name().unwrap().to_string_lossy().into_owned(), *label))
            .collect()
    }

    #[test]
    fn sorts_classes_and_files_and_ignores_non_images() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        for file in ["zebra/b.PNG", "zebra/a.jpeg", "zebra/notes.txt", "zebra/.hidden.png", "ant/c.JPG"] {
            touch(&root.join(file));
        }
        touch(&root.join("readme.png"));
        fs::create_dir_all(root.join(".cache/sub")).unwrap();
        touch(&root.join(".cache/x.png"));
        let folder = ImageFolder::scan(root).unwrap();
        assert_eq!(folder.classes, vec!["ant", "zebra"]);
        assert_eq!(
            names(&folder),
            vec![("c.JPG".into(), 0), ("a.jpeg".into(), 1), ("b.PNG".into(), 1)]
        );
    }

    #[test]
    fn missing_folder_is_tl4001_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let missing = dir.path().join("nowhere");
        let error = ImageFolder::scan(&missing).unwrap_err();
        assert_eq!(error.code, Code::DataFolderMissing);
        assert!(error.message.contains("nowhere"), "{}", error.message);
    }

    #[test]
    fn empty_class_and_no_classes_are_tl4002() {
        let dir = tempfile::tempdir().unwrap();
        let error = ImageFolder::scan(dir.path()).unwrap_err();
        assert_eq!(error.code, Code::EmptyClass);

        touch(&dir.path().join("cat/a.png"));
        touch(&dir.path().join("dog/readme.txt"));
        let error = ImageFolder::scan(dir.path()).unwrap_err();
        assert_eq!(error.code, Code::EmptyClass);
        assert!(error.message.contains("dog"), "{}", error.message);
    }

    #[test]
    fn valid_folder_uses_train_class_order() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a/1.png"));
        touch(&dir.path().join("b/2.png"));
        let train_order = vec!["b".to_string(), "a".to_string()];
        let valid = ImageFolder::scan_with_classes(dir.path(), &train_order).unwrap();
        assert_eq!(valid.classes, train_order);
        assert_eq!(names(&valid), vec![("1.png".into(), 1), ("2.png".into(), 0)]);
    }

    #[test]
    fn valid_folder_class_mismatches_are_tl4004() {
        let dir = tempfile::tempdir().unwrap();
        touch(&dir.path().join("a/1.png"));
        touch(&dir.path().join("extra/2.png"));
        let missing = ImageFolder::scan_with_classes(dir.path(), &["a".into(), "b".into()]).unwrap_err();
        assert_eq!(missing.code, Code::ClassMissingFromValid);
        assert!(missing.message.contains("`b`"), "{}", missing.message);

        let extra = ImageFolder::scan_with_classes(dir.path(), &["a".into()]).unwrap_err();
        assert_eq!(extra.code, Code::ClassMissingFromValid);
        assert!(extra.message.contains("class `extra` in valid"), "{}", extra.message);
        assert!(extra.message.contains("is not in train"), "{}", extra.message);
    }
}
