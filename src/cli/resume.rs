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

/// A checked recipe as JSON, every field of `Recipe` included: the resume guard compares these,
/// so a field added to the recipe is compared without anyone listing it.
fn as_json<T: serde::Serialize>(value: &T) -> Result<Value, Diagnostic> {
    serde_json::to_value(value).map_err(|error| Diagnostic::new(Code::RecipeChanged, format!("cannot compare the recipes: {error}")))
}

/// The keys of two JSON objects, those of `old` first, each once.
fn keys_of<'v>(old: &'v Value, new: &'v Value) -> Vec<&'v str> {
    let mut keys: Vec<&str> = Vec::new();
    for value in [old, new] {
        for key in value.as_object().into_iter().flat_map(|object| object.keys()) {
            if !keys.contains(&key.as_str()) {
                keys.push(key);
            }
        }
    }
    keys
}

/// What differs between two checked recipes, in the recipe's own terms: every field, stages
/// compared by name and then field by field.
pub fn describe_changes(old: &Recipe, new: &Recipe) -> Result<Vec<String>, Diagnostic> {
    let (old_value, new_value) = (as_json(old)?, as_json(new)?);
    let mut changes = Vec::new();
    for key in keys_of(&old_value, &new_value) {
        let (before, after) = (&old_value[key], &new_value[key]);
        if before == after {
            continue;
        }
        if key != "stages" {
            let word = if key == "kept_layers" { "cut" } else { key };
            changes.push(format!("{word} ({} → {})", short(before), short(after)));
            continue;
        }
        let stage_names = |recipe: &Recipe| recipe.stages.iter().map(|stage| stage.name.clone()).collect::<Vec<_>>();
        if stage_names(old) != stage_names(new) {
            changes.push(format!("stages ({} → {})", stage_names(old).join(", "), stage_names(new).join(", ")));
            continue;
        }
        for (old_stage, new_stage) in old.stages.iter().zip(&new.stages) {
            let (a, b) = (as_json(old_stage)?, as_json(new_stage)?);
            let fields: Vec<String> = keys_of(&a, &b)
                .into_iter()
                .filter(|field| a[*field] != b[*field])
                .map(|field| format!("{field} {} → {}", short(&a[field]), short(&b[field])))
                .collect();
            if !fields.is_empty() {
                changes.push(format!("stage `{}` ({})", old_stage.name, fields.join("; ")));
            }
        }
    }
    Ok(changes)
}

/// TL4011 when the recipe at `current_path` is not the one the run started with.
pub fn refuse_if_changed(folder: &Path, saved: &Recipe, saved_source: &str, current_path: &Path, workspace: &super::workspace::Workspace) -> Result<(), Diagnostic> {
    let Ok(current_source) = workspace.source(current_path) else { return Ok(()) };
    if current_source.text == saved_source {
        return Ok(());
    }
    let Some(super::workspace::LoadedRecipe { recipe: current, .. }) = workspace.load_checked(current_path) else {
        return Err(Diagnostic::new(Code::RecipeChanged, format!("{} changed since {} started and no longer checks", current_path.display(), folder.display()))
            .with_help("restore it from the run folder's recipe.tl to resume"));
    };
    let changes = describe_changes(saved, &current)?;
    if changes.is_empty() {
        return Ok(()); // Comments or layout only: the same run.
    }
    Err(Diagnostic::new(Code::RecipeChanged, format!("the recipe changed since {} started: {}", folder.display(), changes.join(", ")))
        .with_help(format!("restore it from {} to resume, or start a new run", folder.join(crate::run_files::RECIPE).display())))
}

#[cfg(test)]
mod tests {
    use super::describe_changes;
    use crate::check::{NoWorld, check_source};

    const RECIPE: &str = "recipe \"guard\"\nbackbone resnet_small from none\ndata { train \"unused\" batch 8 size 16 }\nstage head { train all epochs 1 lr 1e-3 }\n";

    fn checked(source: &str) -> crate::check::recipe::Recipe {
        check_source(source, "guard", &NoWorld).0.expect("the test recipe checks")
    }

    /// Fields nobody listed by hand are compared: `ema`, `loss` and `data` options alike.
    #[test]
    fn every_field_of_the_recipe_is_compared() {
        let old = checked(RECIPE);
        for (edit, field) in [("ema 0.999\n", "ema"), ("loss cross_entropy smoothing 0.1\n", "loss")] {
            let new = checked(&format!("{RECIPE}{edit}"));
            let changes = describe_changes(&old, &new).expect("recipes serialise");
            assert!(changes.iter().any(|change| change.starts_with(field)), "{edit:?} gave {changes:?}");
        }
        let new = checked(&RECIPE.replace("lr 1e-3", "lr 3e-3"));
        assert_eq!(describe_changes(&old, &new).expect("recipes serialise"), vec!["stage `head` (base_lr 0.001 → 0.003)".to_string()]);
        assert!(describe_changes(&old, &checked(&format!("# a comment\n{RECIPE}"))).expect("recipes serialise").is_empty());
    }
}
