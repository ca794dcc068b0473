//! `tlrun run` over several recipes: a make-like walk. A recipe runs after the recipes it starts
//! from (`from recipe "…"`, or `from zoo "…"` that a sibling recipe publishes), and only when its
//! outputs are missing or stale: its content hash (recipe text, data, input weights) changed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::check::recipe::{DataSource, Recipe, Validation};
use crate::plan::{RecipeGraph, RecipeNode};
use crate::span::Span;
use crate::sha256::sha256_file;
use super::workspace::Workspace;
use crate::zoo::{WEIGHTS_FILE, Zoo};

/// What the last successful run of a recipe produced, kept in `.tlrun/<recipe>.json` beside it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub source_hash: String,
    pub outputs: Vec<(PathBuf, String)>,
    pub run_folder: PathBuf,
    pub valid_accuracy: f64,
    /// What the recipe's `predict` steps read (the model's weights, their folders) when they last
    /// ran, and the files they wrote: a changed folder re-runs the predictions, not the training.
    #[serde(default)]
    pub predictions_hash: String,
    #[serde(default)]
    pub predictions: Vec<(PathBuf, String)>,
}

/// A recipe file as the walk sees it: what it publishes and what it needs.
struct Node {
    path: PathBuf,
    publishes: Option<String>,
    needs_recipes: Vec<PathBuf>,
    needs_zoo: Vec<String>,
}

fn canonical(path: &Path) -> PathBuf {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
}

fn read_node(workspace: &Workspace, path: &Path) -> Option<Node> {
    let source = workspace.source(path).ok()?;
    let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let links = &source.links;
    Some(Node {
        path: canonical(path),
        publishes: links.publishes.clone(),
        needs_recipes: links.recipes.iter().map(|reference| canonical(&base.join(&reference.value))).collect(),
        needs_zoo: links.zoo.iter().map(|entry| entry.value.clone()).collect(),
    })
}

/// Targets and everything they depend on, dependencies first, each with the recipes it needs.
/// Recipes in a target's folder are candidates for publishing the zoo entries it needs.
pub fn run_order(workspace: &Workspace, targets: &[PathBuf]) -> Result<Vec<(PathBuf, Vec<PathBuf>)>, String> {
    let mut nodes: BTreeMap<PathBuf, Node> = BTreeMap::new();
    let mut candidates: Vec<PathBuf> = targets.to_vec();
    for target in targets {
        if let Some(folder) = target.parent() {
            let folder = if folder.as_os_str().is_empty() { Path::new(".") } else { folder };
            if let Ok(entries) = std::fs::read_dir(folder) {
                candidates.extend(entries.filter_map(Result::ok).map(|entry| entry.path()).filter(|path| path.extension().is_some_and(|e| e == "tl")));
            }
        }
    }
    while let Some(path) = candidates.pop() {
        let key = canonical(&path);
        if nodes.contains_key(&key) {
            continue;
        }
        let node = read_node(workspace, &path).ok_or_else(|| format!("cannot read recipe {}", path.display()))?;
        candidates.extend(node.needs_recipes.iter().cloned());
        nodes.insert(key, node);
    }
    let publisher = |entry: &str| nodes.values().find(|node| node.publishes.as_deref() == Some(entry)).map(|node| node.path.clone());
    // One recipe-to-recipe graph (plan::RecipeGraph) serves lint's loop check and this walk.
    let recipe_nodes: Vec<RecipeNode> = nodes
        .values()
        .map(|node| RecipeNode {
            path: node.path.display().to_string(),
            dependencies: node
                .needs_recipes
                .iter()
                .cloned()
                .chain(node.needs_zoo.iter().filter_map(|entry| publisher(entry)))
                .map(|dependency| (dependency.display().to_string(), Span::default()))
                .collect(),
        })
        .collect();
    let graph = RecipeGraph::new(recipe_nodes);
    let wanted: Vec<String> = targets.iter().map(|target| canonical(target).display().to_string()).collect();
    let wanted: Vec<&str> = wanted.iter().map(String::as_str).collect();
    let order = graph.order_for(&wanted)?;
    Ok(order
        .into_iter()
        .map(|path| (PathBuf::from(path), graph.dependencies_of(path).into_iter().map(PathBuf::from).collect()))
        .collect())
}

fn hash_bytes(hasher: &mut sha2::Sha256, bytes: &[u8]) {
    use sha2::Digest;
    hasher.update((bytes.len() as u64).to_le_bytes());
    hasher.update(bytes);
}

fn hash_folder(hasher: &mut sha2::Sha256, root: &Path) {
    let mut files = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(folder) = stack.pop() {
        if let Ok(entries) = std::fs::read_dir(&folder) {
            for entry in entries.filter_map(Result::ok) {
                let path = entry.path();
                if path.is_dir() { stack.push(path) } else { files.push(path) }
            }
        }
    }
    files.sort();
    for file in files {
        hash_bytes(hasher, file.strip_prefix(root).unwrap_or(&file).to_string_lossy().as_bytes());
        // An unreadable file hashes as its error, so it never passes for an empty one.
        match std::fs::read(&file) {
            Ok(bytes) => hash_bytes(hasher, &bytes),
            Err(error) => hash_bytes(hasher, format!("unreadable: {error}").as_bytes()),
        }
    }
}

/// The recipe text without its `predict` lines: what training depends on.
fn training_text(source: &str) -> String {
    let (ast, _) = crate::syntax::parse(source);
    let mut text = String::with_capacity(source.len());
    let mut from = 0;
    for item in ast.items.iter().filter(|item| matches!(item.kind, crate::syntax::ast::ItemKind::Predict { .. })) {
        text.push_str(source.get(from..item.span.start).unwrap_or_default());
        from = item.span.end;
    }
    text.push_str(source.get(from..).unwrap_or_default());
    text
}

/// Content hash of everything a run's training depends on: tlrun's version, the recipe text (its
/// `predict` lines aside), the data's files, and the weights it starts from.
pub fn source_hash(recipe: &Recipe, recipe_path: &Path, source: &str, workspace: &Workspace) -> String {
    use sha2::Digest;
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut hasher = sha2::Sha256::new();
    hash_bytes(&mut hasher, env!("CARGO_PKG_VERSION").as_bytes());
    hash_bytes(&mut hasher, training_text(source).as_bytes());
    let mut sources = vec![&recipe.data.train];
    if let Validation::Source { source } = &recipe.data.valid {
        sources.push(source);
    }
    for data in sources {
        if let DataSource::Folder { path } = data {
            hash_folder(&mut hasher, &base.join(path));
        }
    }
    if let Ok(Some(weights)) = workspace.pretrained_weights(recipe, recipe_path) {
        // A weights file that cannot be read hashes as such: the run that follows names the file.
        let fingerprint = sha256_file(&weights).unwrap_or_else(|error| format!("unreadable: {error}"));
        hash_bytes(&mut hasher, fingerprint.as_bytes());
    }
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

pub fn record_path(recipe_path: &Path) -> PathBuf {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let stem = recipe_path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
    base.join(".tlrun").join(format!("{stem}.json"))
}

/// The files a run of `recipe` produces (export and published weights).
pub fn outputs(recipe: &Recipe, recipe_path: &Path, zoo: &Zoo) -> Vec<PathBuf> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut outputs: Vec<PathBuf> = recipe.exports.iter().map(|path| base.join(path)).collect();
    outputs.extend(recipe.publish.iter().map(|entry| zoo.entry_dir(entry).join(WEIGHTS_FILE)));
    outputs
}

/// Why a recipe must run, or `None` when its outputs are current. `record`: its last run's.
pub fn staleness(recipe: &Recipe, recipe_path: &Path, hash: &str, record: Option<&RunRecord>, zoo: &Zoo) -> Option<String> {
    if outputs(recipe, recipe_path, zoo).is_empty() && recipe.predictions.is_empty() {
        return Some("it has no export, publish or predict to keep".into());
    }
    let Some(record) = record else { return Some("it never ran".into()) };
    if record.source_hash != hash {
        return Some("the recipe, its data or its input weights changed".into());
    }
    let model = record.run_folder.join(crate::model_card::MODEL_CARD);
    if !recipe.predictions.is_empty() && !model.is_file() {
        return Some(format!("its predictions need the model, and {} is gone", model.display()));
    }
    for (path, sha256) in &record.outputs {
        match sha256_file(path) {
            Ok(current) if &current == sha256 => {}
            Ok(_) => return Some(format!("{} changed since", path.display())),
            Err(_) => return Some(format!("{} is missing", path.display())),
        }
    }
    None
}

/// Content hash of what the `predict` steps read: tlrun's version, each step, the images under
/// its folder, and the trained weights in `run_folder`. Empty for a recipe without `predict`.
pub fn predictions_hash(recipe: &Recipe, recipe_path: &Path, run_folder: &Path) -> String {
    use sha2::Digest;
    if recipe.predictions.is_empty() {
        return String::new();
    }
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    let mut hasher = sha2::Sha256::new();
    hash_bytes(&mut hasher, env!("CARGO_PKG_VERSION").as_bytes());
    for prediction in &recipe.predictions {
        hash_bytes(&mut hasher, prediction.input.as_bytes());
        hash_bytes(&mut hasher, prediction.output.as_bytes());
        hash_folder(&mut hasher, &base.join(&prediction.input));
    }
    let weights = run_folder.join(crate::run_files::WEIGHTS);
    let fingerprint = sha256_file(&weights).unwrap_or_else(|error| format!("unreadable: {error}"));
    hash_bytes(&mut hasher, fingerprint.as_bytes());
    hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect()
}

/// The files a recipe's `predict` steps write, with their sha256 (those that exist).
pub fn prediction_outputs(recipe: &Recipe, recipe_path: &Path) -> Vec<(PathBuf, String)> {
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    recipe
        .predictions
        .iter()
        .map(|prediction| base.join(&prediction.output))
        .filter_map(|path| sha256_file(&path).ok().map(|sha| (path, sha)))
        .collect()
}

/// Why a recipe whose training is up to date must predict again, or `None`.
pub fn prediction_staleness(recipe: &Recipe, recipe_path: &Path, record: &RunRecord) -> Option<String> {
    if recipe.predictions.is_empty() {
        return None;
    }
    if predictions_hash(recipe, recipe_path, &record.run_folder) != record.predictions_hash {
        return Some("its images to predict, its `predict` lines or its model changed".into());
    }
    let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
    for prediction in &recipe.predictions {
        let path = base.join(&prediction.output);
        match (sha256_file(&path), record.predictions.iter().find(|(known, _)| *known == path)) {
            (Ok(current), Some((_, sha))) if &current == sha => {}
            (Ok(_), _) => return Some(format!("{} changed since", path.display())),
            (Err(_), _) => return Some(format!("{} is missing", path.display())),
        }
    }
    None
}

pub fn read_record(recipe_path: &Path) -> Option<RunRecord> {
    serde_json::from_str(&std::fs::read_to_string(record_path(recipe_path)).ok()?).ok()
}

pub fn write_record(recipe_path: &Path, record: &RunRecord) -> Result<(), crate::diagnostics::Diagnostic> {
    let path = record_path(recipe_path);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).map_err(|error| {
            crate::diagnostics::Diagnostic::new(crate::diagnostics::Code::RunFolderUnwritable, format!("cannot create {}: {error}", parent.display()))
        })?;
    }
    let text = serde_json::to_string_pretty(record).map_err(|error| {
        crate::diagnostics::Diagnostic::new(crate::diagnostics::Code::RunFolderUnwritable, format!("cannot encode {}: {error}", path.display()))
    })?;
    crate::atomic_file::write_atomic(&path, text.as_bytes())
}
