use std::path::{Path, PathBuf};

use crate::check::{World, ZooCard, ZooLookup};
use super::recipe_sources::RecipeSources;
use crate::zoo::Zoo;

/// Answers the checker's questions from disk. Recipe paths are relative to the recipe's folder.
pub struct DiskWorld<'a> {
    pub base: PathBuf,
    pub zoo: &'a Zoo,
    /// Recipe files, read once each (the workspace's).
    pub sources: &'a RecipeSources,
    pub strict: bool,
    /// Zoo entries that recipes of the same lint run `publish`: an entry the zoo lacks is then
    /// checked against what its publisher will write (lint's view of `tlrun run`'s order).
    pub published: Option<&'a Published>,
}

/// Zoo entry name → the recipe file that publishes it.
pub type Published = std::collections::BTreeMap<String, PathBuf>;

/// Recipes reached through `from recipe` chains are read at most this deep (loops are TL3001).
const MAX_RECIPE_DEPTH: usize = 8;

thread_local! {
    static RECIPE_DEPTH: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

impl DiskWorld<'_> {
    pub fn resolve(&self, path: &str) -> PathBuf {
        resolve(&self.base, path)
    }

    /// The entry as the zoo folder has it.
    fn zoo_folder_entry(&self, name: &str) -> ZooLookup {
        let zoo = self.zoo;
        if !zoo.exists() {
            return ZooLookup::Unavailable;
        }
        match zoo.card(name) {
            Ok(card) => ZooLookup::Found(ZooCard {
                name: card.name.clone(),
                architecture: card.architecture.clone(),
                stats: card.stats(),
                trained_on: card.trained_on.clone(),
                source: crate::check::recipe::DataSource::from_card_text(&card.source_data),
                source_valid: crate::check::recipe::Validation::from_card_text(&card.source_valid),
            }),
            Err(_) => ZooLookup::Missing { available: zoo.entry_names() },
        }
    }

    /// The recipe at `path`, checked in its own folder, at most MAX_RECIPE_DEPTH recipes deep.
    fn upstream_recipe(&self, path: &Path) -> Option<crate::check::recipe::Recipe> {
        let depth = RECIPE_DEPTH.with(|depth| depth.get());
        if depth >= MAX_RECIPE_DEPTH {
            return None;
        }
        let source = self.sources.source(path).ok()?;
        let upstream_world = DiskWorld {
            base: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            zoo: self.zoo,
            sources: self.sources,
            strict: false,
            published: self.published,
        };
        RECIPE_DEPTH.with(|d| d.set(depth + 1));
        let (recipe, _) = crate::check::check_source(&source.text, "upstream", &upstream_world);
        RECIPE_DEPTH.with(|d| d.set(depth));
        recipe
    }

    /// The card `publish "name"` in the recipe at `path` will write, as far as checking needs it.
    fn card_published_by(&self, name: &str, path: &Path) -> Option<ZooCard> {
        let recipe = self.upstream_recipe(path)?;
        let (mean, std) = recipe.input_normalisation();
        let folder_of_publisher = path.parent().unwrap_or(Path::new("."));
        let absolute = |source: crate::check::recipe::DataSource| match source {
            crate::check::recipe::DataSource::Folder { path: folder } => {
                crate::check::recipe::DataSource::Folder { path: resolve(folder_of_publisher, &folder).display().to_string() }
            }
            synthetic => synthetic,
        };
        let source_valid = match recipe.data.valid.clone() {
            crate::check::recipe::Validation::Source { source } => crate::check::recipe::Validation::Source { source: absolute(source) },
            split => split,
        };
        Some(ZooCard {
            name: name.to_string(),
            architecture: recipe.backbone.architecture.name.to_string(),
            stats: crate::arch::Stats { mean, std, input_size: recipe.last_size(), channels: recipe.input_channels() },
            trained_on: recipe.data.train.describe(),
            // A folder is relative to the publisher's recipe; the run writes it absolute.
            source: Some(absolute(recipe.data.train)),
            source_valid: Some(source_valid),
        })
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
        let in_zoo = self.zoo_folder_entry(name);
        if matches!(in_zoo, ZooLookup::Found(_)) {
            return in_zoo;
        }
        let publisher = self.published.and_then(|published| published.get(name));
        publisher.and_then(|path| self.card_published_by(name, path)).map_or(in_zoo, ZooLookup::Found)
    }

    fn class_folders(&self, folder: &str) -> Option<Vec<String>> {
        class_folders(&self.resolve(folder))
    }

    fn class_image_counts(&self, folder: &str) -> Option<Vec<usize>> {
        // The runtime's own scan, so that lint counts exactly the images a run would load.
        let scanned = crate::data::ImageFolder::scan(&self.resolve(folder)).ok()?;
        let mut counts = vec![0; scanned.classes.len()];
        for (_, label) in &scanned.items {
            counts[*label] += 1;
        }
        Some(counts)
    }

    fn strict(&self) -> bool {
        self.strict
    }

    fn path_kind(&self, path: &str) -> crate::check::PathKind {
        match std::fs::metadata(self.resolve(path)) {
            Ok(metadata) if metadata.is_dir() => crate::check::PathKind::Folder,
            Ok(_) => crate::check::PathKind::File,
            Err(error) if error.kind() == std::io::ErrorKind::NotFound => crate::check::PathKind::Missing,
            Err(_) => crate::check::PathKind::Unknown,
        }
    }

    fn recipe_stats(&self, path: &str) -> Option<crate::arch::Stats> {
        let recipe = self.upstream_recipe(&self.resolve(path))?;
        let (mean, std) = recipe.input_normalisation();
        Some(crate::arch::Stats { mean, std, input_size: recipe.last_size(), channels: recipe.input_channels() })
    }
}
