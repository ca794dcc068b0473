//! Reading a recipe file from disk, safely. Only the CLI's workspace calls it
//! (`cli/recipe_sources.rs`, the workspace's cache): every command reads its recipes there, once each. Burn-free.

use std::path::Path;

/// The most bytes a recipe file may hold; larger files are refused before they are read.
pub const MAX_RECIPE_BYTES: u64 = 10 * 1024 * 1024;

/// A recipe's text: only a regular file, at most `MAX_RECIPE_BYTES`, valid UTF-8. The error says
/// which of these failed, in words (`/dev/zero` is not read until memory runs out).
pub fn read_recipe_text(path: &Path) -> Result<String, String> {
    let metadata = std::fs::metadata(path).map_err(|error| match error.kind() {
        std::io::ErrorKind::NotFound => "it does not exist".to_string(),
        _ => error.to_string(),
    })?;
    if metadata.is_dir() {
        return Err("it is a folder, not a recipe file".to_string());
    }
    if !metadata.is_file() {
        return Err("it is not a regular file (a device, pipe or socket)".to_string());
    }
    if metadata.len() > MAX_RECIPE_BYTES {
        return Err(format!("it holds {} bytes, more than the {MAX_RECIPE_BYTES}-byte limit for a recipe", metadata.len()));
    }
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    String::from_utf8(bytes).map_err(|error| {
        format!("it is not UTF-8 text (byte {} is not valid UTF-8: save the file as UTF-8)", error.utf8_error().valid_up_to())
    })
}
