//! The model zoo on disk: a folder of entries, each `<name>/card.toml` plus `<name>/weights.safetensors`.

mod card;
pub mod feature_stats;

pub use card::{Card, CardError};
pub use feature_stats::{FEATURES_FILE, read as read_feature_stats};

use std::path::{Path, PathBuf};

pub const CARD_FILE: &str = "card.toml";
pub const WEIGHTS_FILE: &str = "weights.safetensors";

/// A zoo folder: `--zoo`, else `TLRUN_ZOO`, else `./zoo`.
#[derive(Debug, Clone)]
pub struct Zoo {
    pub root: PathBuf,
}

impl Zoo {
    pub fn locate(explicit: Option<&Path>) -> Zoo {
        let root = explicit
            .map(Path::to_path_buf)
            .or_else(|| std::env::var_os("TLRUN_ZOO").map(PathBuf::from))
            .unwrap_or_else(|| PathBuf::from("zoo"));
        Zoo { root }
    }

    pub fn exists(&self) -> bool {
        self.root.is_dir()
    }

    pub fn entry_dir(&self, name: &str) -> PathBuf {
        self.root.join(name)
    }

    /// Names of the entries that have a card, sorted.
    pub fn entry_names(&self) -> Vec<String> {
        let Ok(entries) = std::fs::read_dir(&self.root) else { return Vec::new() };
        let mut names: Vec<String> = entries
            .filter_map(Result::ok)
            .filter(|entry| entry.path().join(CARD_FILE).is_file())
            .filter_map(|entry| entry.file_name().into_string().ok())
            .collect();
        names.sort();
        names
    }

    pub fn card(&self, name: &str) -> Result<Card, CardError> {
        Card::read(&self.entry_dir(name).join(CARD_FILE))
    }
}
