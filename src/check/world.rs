//! What the checker may know about the outside: zoo cards and class folders. The CLI answers from
//! disk; tests answer from memory. The checker itself never touches the file system.

use crate::arch::Stats;

/// A zoo card's facts that matter to a recipe.
#[derive(Debug, Clone, PartialEq)]
pub struct ZooCard {
    pub name: String,
    pub architecture: String,
    pub stats: Stats,
    /// What the weights were trained on, in words ("synthetic shapes, 32px RGB").
    pub trained_on: String,
    /// The training images as data a run can load (the card's `source_data`), for forgetting.
    pub source: Option<crate::check::recipe::DataSource>,
    /// The pretraining's held-out images (the card's `source_valid`), where forgetting is scored.
    pub source_valid: Option<crate::check::recipe::Validation>,
}

pub enum ZooLookup {
    Found(ZooCard),
    /// The zoo exists but has no such entry; these are the names it has.
    Missing { available: Vec<String> },
    /// No zoo to look in (not present on this machine).
    Unavailable,
}

/// What is at a data path, as far as the world can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathKind {
    Folder,
    File,
    Missing,
    Unknown,
}

pub trait World {
    fn zoo_entry(&self, name: &str) -> ZooLookup;
    /// Sorted class folder names under `folder`, or `None` when the folder is not there.
    fn class_folders(&self, folder: &str) -> Option<Vec<String>>;
    /// Image files in each class folder of `folder`, in `class_folders` order; `None` when unknown.
    fn class_image_counts(&self, _folder: &str) -> Option<Vec<usize>> {
        None
    }
    /// The statistics the model exported by another recipe was trained with (its normalisation and
    /// last image size), for `backbone … from recipe "…"`; `None` when it cannot be read.
    fn recipe_stats(&self, _path: &str) -> Option<Stats> {
        None
    }
    /// Whether `path` (relative to the recipe) is a folder, a file or nothing.
    fn path_kind(&self, _path: &str) -> PathKind {
        PathKind::Unknown
    }
    /// Whether a missing zoo or folder is an error (`--strict`) rather than something to skip.
    fn strict(&self) -> bool {
        false
    }
}

/// A world with nothing in it: only the recipe text is checked.
pub struct NoWorld;

impl World for NoWorld {
    fn zoo_entry(&self, _name: &str) -> ZooLookup {
        ZooLookup::Unavailable
    }

    fn class_folders(&self, _folder: &str) -> Option<Vec<String>> {
        None
    }
}
