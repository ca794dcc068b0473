//! Recipe files read once: a cache keyed by canonical path holding each file's text and links,
//! or why it cannot be read. The workspace owns one; the checker's `DiskWorld` reads upstream
//! recipes through it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use crate::plan::RecipeLinks;

/// A recipe file's text, read once, and what it links to.
pub struct RecipeSource {
    pub text: String,
    pub links: RecipeLinks,
}

type Read = Result<Arc<RecipeSource>, String>;

/// Sync (a mutex), so that a command can run in a thread pool of its own (`--threads`).
#[derive(Default)]
pub struct RecipeSources {
    read: Mutex<BTreeMap<PathBuf, Read>>,
}

impl RecipeSources {
    /// The recipe at `path`, read on first use (`recipe_text::read_recipe_text`: a regular UTF-8
    /// file of at most 10 MB); the error says why it cannot be read.
    pub fn source(&self, path: &Path) -> Read {
        let key = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        if let Some(known) = self.cache().get(&key) {
            return known.clone();
        }
        let read = crate::recipe_text::read_recipe_text(path).map(|text| {
            let links = crate::plan::recipe_links(&crate::syntax::parse(&text).0);
            Arc::new(RecipeSource { text, links })
        });
        self.cache().insert(key, read.clone());
        read
    }

    /// The cache; a thread that panicked while holding it left whole entries only.
    fn cache(&self) -> MutexGuard<'_, BTreeMap<PathBuf, Read>> {
        self.read.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
