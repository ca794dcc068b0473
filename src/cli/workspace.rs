//! The front door for recipe files. A command reads every recipe it touches through one
//! `Workspace`: each file is read from disk once (keyed by its canonical path) and kept with its
//! links (`from recipe`, `from zoo`, `publish`, `export`); checking a recipe reads the recipes it
//! starts from through the same workspace; and the weights a recipe starts from are resolved here
//! (a `from recipe` through that recipe's export), so the runtime reads no recipe text.
//!
//! A workspace lives for one command. `--write` saves an edited recipe and lints the edit as
//! text, before anything is saved; nothing reads the file again through the old workspace.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::disk_world::{DiskWorld, Published};
use super::recipe_file::RecipeFile;
pub use super::recipe_sources::RecipeSource;
use super::recipe_sources::RecipeSources;
use crate::check::Runnable;
use crate::check::recipe::{Recipe, Weights};
use crate::diagnostics::{Code, Diagnostic};
use crate::plan::{RecipeGraph, RecipeNode};
use crate::render::{self, FileDiagnostics, HumanStyle};
use crate::zoo::{WEIGHTS_FILE, Zoo};

pub struct Workspace<'z> {
    pub zoo: &'z Zoo,
    sources: RecipeSources,
}

/// A recipe that checked, with the text it was checked from.
pub struct LoadedRecipe {
    pub recipe: Runnable,
    pub source: String,
}

impl<'z> Workspace<'z> {
    pub fn new(zoo: &'z Zoo) -> Self {
        Workspace { zoo, sources: RecipeSources::default() }
    }

    /// The recipe at `path`, read on first use; the error says why it cannot be read.
    pub fn source(&self, path: &Path) -> Result<Arc<RecipeSource>, String> {
        self.sources.source(path)
    }

    /// Which of `files` publishes which zoo entry (the first, when two publish one name: TL1006 is
    /// not lint's to give across files). Unreadable files publish nothing.
    pub fn publishers(&self, files: &[PathBuf]) -> Published {
        let mut published = Published::new();
        for file in files {
            if let Some(entry) = self.source(file).ok().and_then(|source| source.links.publishes.clone()) {
                published.entry(entry).or_insert_with(|| file.clone());
            }
        }
        published
    }

    /// The recipe at `path`, read and checked. `published`: zoo entries other recipes will
    /// publish (see `DiskWorld::published`).
    pub fn recipe_file(&self, path: &Path, strict: bool, published: &Published) -> Result<RecipeFile, String> {
        let source = self.source(path)?;
        Ok(self.check_text(path, source.text.clone(), strict, Some(published)))
    }

    /// `text` checked as if it were the recipe at `path`: a sweep's variant, a run's saved
    /// recipe, an edit before it is saved.
    pub fn check_text(&self, path: &Path, text: String, strict: bool, published: Option<&Published>) -> RecipeFile {
        let base = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let world = DiskWorld { base, zoo: self.zoo, sources: &self.sources, strict, published };
        let stem = path.file_stem().map(|stem| stem.to_string_lossy().into_owned()).unwrap_or_default();
        let (ast, recipe, diagnostics) = crate::check::parse_and_check(&text, &stem, &world);
        let links = crate::plan::recipe_links(&ast);
        let references = links.recipes.into_iter().map(|reference| (world.resolve(&reference.value), reference)).collect();
        RecipeFile { path: path.to_path_buf(), display: path.display().to_string(), source: text, recipe, diagnostics, references, zoo_entries: links.zoo }
    }

    /// Read and check one recipe, with the recipes it starts from (their loops and missing
    /// files); print its diagnostics to stderr; the recipe only when it has no errors.
    pub fn load_checked(&self, path: &Path) -> Option<LoadedRecipe> {
        let none = Published::new();
        let file = match self.recipe_file(path, false, &none) {
            Ok(file) => file,
            Err(reason) => {
                super::output::usage_error(format!("cannot read {}: {reason}", path.display()));
                return None;
            }
        };
        let mut with_upstream = vec![file];
        self.check_recipe_graph(&mut with_upstream, &none);
        let mut file = with_upstream.swap_remove(0);
        file.sort_diagnostics();
        print_diagnostics(&file);
        let source = file.source;
        Runnable::new(file.recipe, file.diagnostics).ok().map(|(recipe, _)| LoadedRecipe { recipe, source })
    }

    /// The checked form of `text` (a sweep's variant, a run's saved recipe) at `path`; its
    /// diagnostics printed when it does not check.
    pub fn runnable_text(&self, path: &Path, text: String) -> Option<Runnable> {
        let file = self.check_text(path, text, false, None);
        match Runnable::new(file.recipe.clone(), file.diagnostics.clone()) {
            Ok((runnable, _)) => Some(runnable),
            Err(_) => {
                print_diagnostics(&file);
                None
            }
        }
    }

    /// The weights file the recipe at `recipe_path` starts from, if any: its file, its zoo
    /// entry's weights, or the safetensors export of the recipe it starts from.
    pub fn pretrained_weights(&self, recipe: &Recipe, recipe_path: &Path) -> Result<Option<PathBuf>, Diagnostic> {
        let base = recipe_path.parent().map(Path::to_path_buf).unwrap_or_default();
        Ok(match &recipe.backbone.weights {
            Weights::Random => None,
            Weights::File(path) => Some(base.join(path)),
            Weights::Zoo(name) => Some(self.zoo.entry_dir(name).join(WEIGHTS_FILE)),
            Weights::Recipe(path) => {
                let upstream_path = base.join(path);
                let upstream = self.source(&upstream_path).map_err(|reason| {
                    Diagnostic::new(Code::MissingRecipeInput, format!("cannot read recipe {}: {reason}", upstream_path.display()))
                })?;
                let export = upstream.links.export.clone().ok_or_else(|| {
                    Diagnostic::new(Code::MissingRecipeInput, format!("recipe {} exports no safetensors", upstream_path.display()))
                        .with_help("add `export \"path.safetensors\"` to that recipe (an `.onnx` export is for ONNX Runtime)")
                })?;
                let upstream_base = upstream_path.parent().map(Path::to_path_buf).unwrap_or_default();
                Some(upstream_base.join(export))
            }
        })
    }

    /// Missing recipe references (TL3002) and loops between recipes (TL3001), over the linted files and
    /// every recipe they reach.
    pub fn check_recipe_graph(&self, recipes: &mut Vec<RecipeFile>, published: &Published) {
        let linted = recipes.len();
        let mut index = 0;
        while index < recipes.len() {
            let references = recipes[index].references.clone();
            for (path, reference) in references {
                let known = recipes.iter().any(|recipe| same_file(&recipe.path, &path));
                if known {
                    continue;
                }
                match self.recipe_file(&path, false, published) {
                    Ok(upstream) => recipes.push(upstream),
                    Err(reason) => recipes[index].diagnostics.push(
                        Diagnostic::new(Code::MissingRecipeInput, format!("recipe `{}` cannot be read: {reason}", reference.value))
                            .at(reference.span, "not a readable recipe file")
                            .with_help("paths are relative to this recipe's folder"),
                    ),
                }
            }
            index += 1;
        }
        let keys: Vec<String> = recipes.iter().map(|recipe| canonical(&recipe.path)).collect();
        let nodes = recipes
            .iter()
            .zip(&keys)
            .map(|(recipe, key)| RecipeNode {
                path: key.clone(),
                dependencies: recipe.references.iter().map(|(path, reference)| (canonical(path), reference.span)).collect(),
            })
            .collect();
        let mut by_file: BTreeMap<String, Vec<Diagnostic>> = BTreeMap::new();
        for (key, diagnostic) in RecipeGraph::new(nodes).cycle_diagnostics() {
            by_file.entry(key).or_default().push(diagnostic);
        }
        for (recipe, key) in recipes.iter_mut().zip(&keys) {
            if let Some(found) = by_file.remove(key) {
                recipe.diagnostics.extend(found.into_iter().map(|diagnostic| shorten_loop(diagnostic)));
            }
        }
        // Recipes reached only through references are reported only when they are in a loop.
        let reached: Vec<RecipeFile> = recipes.drain(linted..).collect();
        recipes.extend(reached.into_iter().filter(|recipe| recipe.diagnostics.iter().any(|d| d.code == Code::RecipeCycle)));
    }
}

/// Loop messages name files by their file name, not their absolute path.
fn shorten_loop(mut diagnostic: Diagnostic) -> Diagnostic {
    if let Some((head, chain)) = diagnostic.message.split_once(": ") {
        let short: Vec<String> = chain
            .split(" → ")
            .map(|path| Path::new(path).file_name().map_or(path.to_string(), |name| name.to_string_lossy().into_owned()))
            .collect();
        diagnostic.message = format!("{head}: {}", short.join(" → "));
    }
    diagnostic
}

fn canonical(path: &Path) -> String {
    std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf()).display().to_string()
}

fn same_file(a: &Path, b: &Path) -> bool {
    canonical(a) == canonical(b)
}

/// A file's diagnostics on stderr, coloured on a terminal.
fn print_diagnostics(file: &RecipeFile) {
    if file.diagnostics.is_empty() {
        return;
    }
    let style = if std::io::stderr().is_terminal() { HumanStyle::Colour } else { HumanStyle::Plain };
    let view = FileDiagnostics { path: &file.display, source: &file.source, diagnostics: &file.diagnostics };
    eprint!("{}", render::human(&view, style));
}
