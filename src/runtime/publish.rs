//! `publish "name"`: the trained network goes into the zoo with a card of how it was trained.

use super::model::Network;
use super::weights;
use crate::check::recipe::{DataSource, Recipe};
use crate::diagnostics::{Code, Diagnostic};
use crate::zoo::{CARD_FILE, Card, WEIGHTS_FILE, Zoo};

pub fn publish(network: &Network, recipe: &Recipe, classes: &[String], zoo: &Zoo, entry: &str) -> Result<Card, Diagnostic> {
    let folder = zoo.entry_dir(entry);
    std::fs::create_dir_all(&folder).map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot create zoo entry {}: {error}", folder.display()))
            .with_help("check `--zoo` / TLRUN_ZOO points at a writable folder")
    })?;
    let weights_path = folder.join(WEIGHTS_FILE);
    weights::save(network, &weights_path)?;
    let sha256 = weights::sha256_file(&weights_path).map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot read back {}: {error}", weights_path.display()))
    })?;
    let trained_size = recipe.last_size();
    let synthetic = matches!(recipe.data.train, DataSource::Synthetic { .. });
    let card = Card {
        name: entry.to_string(),
        architecture: recipe.backbone.architecture.name.to_string(),
        mean: recipe.input_normalisation().0,
        std: recipe.input_normalisation().1,
        input_size: trained_size,
        channels: recipe.input_channels(),
        classes: classes.to_vec(),
        trained_on: recipe.data.train.describe(),
        provenance: format!("trained by tlrun {} from recipe `{}` (seed {})", env!("CARGO_PKG_VERSION"), recipe.name, recipe.seed),
        license: if synthetic { "CC0-1.0 (synthetic data drawn by tlrun)".into() } else { "as the training data's license".into() },
        sha256,
    };
    super::run_folder::write_atomic(&folder.join(CARD_FILE), card.to_toml()?.as_bytes())?;
    Ok(card)
}
