//! `tlrun resume RUN_DIR` and `tlrun recipe.tl --resume`: continue a run from its checkpoint, and
//! refuse when the recipe changed since the run started.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::check::recipe::Recipe;
use crate::diagnostics::{Code, Diagnostic};
use crate::runtime::runner::{ORIGIN, Origin};

/// The newest unfinished run of `recipe` under runs/ that has a checkpoint.
pub fn latest_unfinished(runs_root: &Path, recipe: &str) -> Option<PathBuf> {
    let mut folders: Vec<PathBuf> = std::fs::read_dir(runs_root.join("runs").join(recipe))
        .ok()?
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| crate::runtime::checkpoint::latest(path).is_some() && !path.join(crate::run_files::SUMMARY).is_file())
        .collect();
    folders.sort();
    folders.pop()
}

/// The recipe a run started with, and where it lives.
pub fn original(folder: &Path) -> Result<(PathBuf, String), Diagnostic> {
    let unreadable = |what: String| {
        Diagnostic::new(Code::RunFolderUnreadable, format!("cannot resume {}: {what}", folder.display()))
            .with_help("give a folder that `tlrun run` wrote, e.g. runs/<recipe>/<timestamp>")
    };
    let origin: Origin = std::fs::read_to_string(folder.join(ORIGIN))
        .ok()
        .and_then(|text| serde_json::from_str(&text).ok())
        .ok_or_else(|| unreadable("it has no origin.json".into()))?;
    let source = std::fs::read_to_string(folder.join(crate::run_files::RECIPE)).map_err(|error| unreadable(format!("{}: {error}", crate::run_files::RECIPE)))?;
    Ok((origin.recipe_path, source))
}

fn short(value: &Value) -> String {
    let text = value.to_string();
    if text.len() > 60 { format!("{}…", &text[..text.char_indices().nth(57).map_or(text.len(), |(i, _)| i)]) } else { text }
}

/// What differs between two checked recipes, in the recipe's own terms.
pub fn describe_changes(old: &Recipe, new: &Recipe) -> Vec<String> {
    let old_value = serde_json::to_value(old).unwrap_or(Value::Null);
    let new_value = serde_json::to_value(new).unwrap_or(Value::Null);
    let mut changes = Vec::new();
    let keys = ["name", "seed", "backbone", "data", "kept_layers", "head", "groups", "export", "publish", "checkpoint_every"];
    for key in keys {
        if old_value.get(key) != new_value.get(key) {
            let word = if key == "kept_layers" { "cut" } else { key };
            changes.push(format!("{word} ({} → {})", short(&old_value[key]), short(&new_value[key])));
        }
    }
    let stage_names = |recipe: &Recipe| recipe.stages.iter().map(|stage| stage.name.clone()).collect::<Vec<_>>();
    if stage_names(old) != stage_names(new) {
        changes.push(format!("stages ({} → {})", stage_names(old).join(", "), stage_names(new).join(", ")));
    } else {
        for (old_stage, new_stage) in old.stages.iter().zip(&new.stages) {
            let (a, b) = (serde_json::to_value(old_stage).unwrap_or(Value::Null), serde_json::to_value(new_stage).unwrap_or(Value::Null));
            let fields: Vec<String> = a
                .as_object()
                .into_iter()
                .flat_map(|object| object.keys())
                .filter(|field| a.get(*field) != b.get(*field))
                .map(|field| format!("{field} {} → {}", short(&a[field]), short(&b[field])))
                .collect();
            if !fields.is_empty() {
                changes.push(format!("stage `{}` ({})", old_stage.name, fields.join("; ")));
            }
        }
    }
    changes
}

/// TL4011 when the recipe at `current_path` is not the one the run started with.
pub fn refuse_if_changed(folder: &Path, saved: &Recipe, saved_source: &str, current_path: &Path, zoo: &crate::zoo::Zoo) -> Result<(), Diagnostic> {
    let Ok(current_source) = std::fs::read_to_string(current_path) else { return Ok(()) };
    if current_source == saved_source {
        return Ok(());
    }
    let Some(current) = super::plan::load_checked(current_path, zoo) else {
        return Err(Diagnostic::new(Code::RecipeChanged, format!("{} changed since {} started and no longer checks", current_path.display(), folder.display()))
            .with_help("restore it from the run folder's recipe.tl to resume"));
    };
    let changes = describe_changes(saved, &current);
    if changes.is_empty() {
        return Ok(()); // Comments or layout only: the same run.
    }
    Err(Diagnostic::new(Code::RecipeChanged, format!("the recipe changed since {} started: {}", folder.display(), changes.join(", ")))
        .with_help(format!("restore it from {} to resume, or start a new run", folder.join(crate::run_files::RECIPE).display())))
}
