use std::path::{Path, PathBuf};

use crate::check::{World, ZooCard, ZooLookup};
use crate::zoo::Zoo;

/// Answers the checker's questions from disk. Recipe paths are relative to the recipe's folder.
pub struct DiskWorld<'a> {
    pub base: PathBuf,
    pub zoo: &'a Zoo,
    pub strict: bool,
}

impl DiskWorld<'_> {
    pub fn resolve(&self, path: &str) -> PathBuf {
        resolve(&self.base, path)
    }
}

pub fn resolve(base: &Path, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() { path.to_path_buf() } else { base.join(path) }
}

/// Sorted names of the sub-folders of `folder` (the classes of an image-folder data set).
pub fn class_folders(folder: &Path) -> Option<Vec<String>> {
    let entries = std::fs::read_dir(folder).ok()?;
    let mut classes: Vec<String> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.path().is_dir())
        .filter_map(|entry| entry.file_name().into_string().ok())
        .filter(|name| !name.starts_with('.'))
        .collect();
    classes.sort();
    Some(classes)
}

impl World for DiskWorld<'_> {
    fn zoo_entry(&self, name: &str) -> ZooLookup {
        if !self.zoo.exists() {
            return ZooLookup::Unavailable;
        }
        match self.zoo.card(name) {
            Ok(card) => ZooLookup::Found(ZooCard {
                name: card.name.clone(),
                architecture: card.architecture.clone(),
                stats: card.stats(),
                trained_on: card.trained_on.clone(),
            }),
            Err(_) => ZooLookup::Missing { available: self.zoo.entry_names() },
        }
    }

    fn class_folders(&self, folder: &str) -> Option<Vec<String>> {
        class_folders(&self.resolve(folder))
    }

    fn strict(&self) -> bool {
        self.strict
    }
}
