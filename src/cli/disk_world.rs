use std::path::{Path, PathBuf};

use crate::check::{World, ZooCard, ZooLookup};
use crate::zoo::Zoo;

/// Answers the checker's questions from disk. Recipe paths are relative to the recipe's folder.
pub struct DiskWorld<'a> {
    pub base: PathBuf,
    pub zoo: &'a Zoo,
    pub strict: bool,
}

/// Recipes reached through `from recipe` chains are read at most this deep (loops are TL3001).
const MAX_RECIPE_DEPTH: usize = 8;

thread_local! {
    static RECIPE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
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
                source: crate::check::recipe::DataSource::from_card_text(&card.source_data),
            }),
            Err(_) => ZooLookup::Missing { available: self.zoo.entry_names() },
        }
    }

    fn class_folders(&self, folder: &str) -> Option<Vec<String>> {
        class_folders(&self.resolve(folder))
    }

    fn class_image_counts(&self, folder: &str) -> Option<Vec<usize>> {
        // The runtime's own scan, so that lint counts exactly the images a run would load.
        let scanned = crate::runtime::data::ImageFolder::scan(&self.resolve(folder)).ok()?;
        let mut counts = vec![0; scanned.classes.len()];
        for (_, label) in &scanned.items {
            counts[*label] += 1;
        }
        Some(counts)
    }

    fn strict(&self) -> bool {
        self.strict
    }

    fn recipe_stats(&self, path: &str) -> Option<crate::arch::Stats> {
        let depth = RECIPE_DEPTH.with(|depth| depth.get());
        if depth >= MAX_RECIPE_DEPTH {
            return None;
        }
        let path = self.resolve(path);
        let source = crate::recipe_text::read_recipe_text(&path).ok()?;
        let upstream_world = DiskWorld { base: path.parent().map(Path::to_path_buf).unwrap_or_default(), zoo: self.zoo, strict: false };
        RECIPE_DEPTH.with(|d| d.set(depth + 1));
        let (recipe, _) = crate::check::check_source(&source, "upstream", &upstream_world);
        RECIPE_DEPTH.with(|d| d.set(depth));
        let recipe = recipe?;
        let input_size = recipe.last_size();
        let (mean, std) = recipe.input_normalisation();
        Some(crate::arch::Stats { mean, std, input_size, channels: recipe.input_channels() })
    }
}
