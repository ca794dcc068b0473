//! Writing images out as a `<root>/<class>/<index>.png` folder that `ImageFolder::scan` reads back.

use std::path::Path;

use image::{ExtendedColorType, ImageEncoder, codecs::png::PngEncoder};

use super::decoded::DecodedImage;
use crate::diagnostics::{Code, Diagnostic};

/// Write each image as PNG under its class folder, named by its index in `images` (zero-padded
/// so that name order is index order). Each file is written under a temporary name and renamed,
/// so an interrupted export never leaves a half-written PNG that a later scan would trip on.
pub fn write_image_folder(
    root: &Path,
    classes: &[String],
    images: &[DecodedImage],
    labels: &[usize],
) -> Result<(), Diagnostic> {
    if images.len() != labels.len() {
        return Err(unwritable(root, &format!("{} images but {} labels", images.len(), labels.len())));
    }
    if let Some(class) = classes.iter().find(|class| !is_safe_folder_name(class)) {
        return Err(unwritable(root, &format!("class name `{class}` cannot be a folder name")));
    }
    for class in classes {
        let folder = root.join(class);
        std::fs::create_dir_all(&folder).map_err(|error| unwritable(&folder, &error.to_string()))?;
    }
    let digits = images.len().saturating_sub(1).to_string().len();
    for (index, (image, &label)) in images.iter().zip(labels).enumerate() {
        let class = classes.get(label).ok_or_else(|| {
            unwritable(root, &format!("image {index} has label {label} but there are {} classes", classes.len()))
        })?;
        if !image.is_consistent() {
            return Err(unwritable(root, &format!("image {index} has {} bytes for {}x{} pixels", image.pixels.len(), image.width, image.height)));
        }
        let path = root.join(class).join(format!("{index:0digits$}.png"));
        let temporary = root.join(class).join(format!(".{index:0digits$}.png.partial"));
        let mut bytes = Vec::new();
        PngEncoder::new(&mut bytes)
            .write_image(&image.pixels, image.width, image.height, ExtendedColorType::Rgb8)
            .map_err(|error| unwritable(&path, &error.to_string()))?;
        std::fs::write(&temporary, &bytes).map_err(|error| unwritable(&temporary, &error.to_string()))?;
        std::fs::rename(&temporary, &path).map_err(|error| unwritable(&path, &error.to_string()))?;
    }
    Ok(())
}

/// One plain path component: no separators, no `..`, not hidden (scan would skip it).
fn is_safe_folder_name(name: &str) -> bool {
    !name.is_empty() && !name.starts_with('.') && !name.contains(['/', '\\', '\0'])
}

fn unwritable(path: &Path, reason: &str) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnwritable, format!("cannot export images to `{}`: {reason}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::recipe::CorruptPolicy;
    use crate::data::{ImageFolder, decode_all};

    #[test]
    fn round_trips_through_scan_and_decode() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("export");
        let classes = vec!["b-class".to_string(), "a-class".to_string()];
        let images: Vec<DecodedImage> = (0..12u8)
            .map(|i| DecodedImage { width: 3, height: 2, pixels: (0..18).map(|v| v * 10 + i).collect() })
            .collect();
        let labels: Vec<usize> = (0..12).map(|i| i % 2).collect();
        write_image_folder(&root, &classes, &images, &labels).unwrap();
        assert!(root.join("b-class/00.png").is_file() && root.join("a-class/11.png").is_file());

        let folder = ImageFolder::scan_with_classes(&root, &classes).unwrap();
        assert_eq!(folder.classes, classes);
        let decoded = decode_all(&folder.items, CorruptPolicy::Fail).unwrap();
        assert_eq!(decoded.images.len(), 12);
        // Scan order is class folder then file name: a-class holds the odd indices.
        let order: Vec<usize> = (0..12).filter(|i| i % 2 == 1).chain((0..12).filter(|i| i % 2 == 0)).collect();
        for (position, &original) in order.iter().enumerate() {
            assert_eq!(decoded.images[position], images[original]);
            assert_eq!(decoded.labels[position], labels[original]);
        }
        // No temporary files remain.
        let leftovers = walk_count(&root, |name| name.ends_with(".partial"));
        assert_eq!(leftovers, 0);
    }

    fn walk_count(root: &Path, matches: impl Fn(&str) -> bool + Copy) -> usize {
        std::fs::read_dir(root)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .map(|path| {
                if path.is_dir() {
                    walk_count(&path, matches)
                } else {
                    usize::from(matches(&path.file_name().unwrap().to_string_lossy()))
                }
            })
            .sum()
    }

    #[test]
    fn rejects_bad_labels_and_class_names() {
        let dir = tempfile::tempdir().unwrap();
        let image = DecodedImage { width: 1, height: 1, pixels: vec![0, 0, 0] };
        assert!(write_image_folder(dir.path(), &["a".into()], &[image.clone()], &[1]).is_err());
        assert!(write_image_folder(dir.path(), &["../up".into()], &[image.clone()], &[0]).is_err());
        assert!(write_image_folder(dir.path(), &["a".into()], &[image], &[]).is_err());
    }
}
