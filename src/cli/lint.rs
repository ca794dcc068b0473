use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use clap::{Args, ValueEnum};

use super::{OutputFormat, RecipeFile};
use crate::diagnostics::Severity;
use crate::render::{self, FileDiagnostics, HumanStyle};
use super::workspace::Workspace;

#[derive(Args)]
pub struct LintArgs {
    /// Recipe files or folders (searched for *.tl); default: the current folder.
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = OutputFormat::Human)]
    pub format: OutputFormat,
    /// Treat these findings as failures too (`--deny warnings`).
    #[arg(long, value_enum)]
    pub deny: Option<Deny>,
    /// Also fail when data folders or zoo entries are missing (by default they are checked when present).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Clone, Copy, ValueEnum)]
pub enum Deny {
    Warnings,
}

pub fn run(args: &LintArgs, workspace: &Workspace) -> u8 {
    let roots = if args.paths.is_empty() { vec![PathBuf::from(".")] } else { args.paths.clone() };
    let mut files = Vec::new();
    for root in &roots {
        if let Err(message) = collect_recipes(root, &mut files) {
            return super::output::usage_error(message);
        }
    }
    if files.is_empty() {
        return super::output::usage_error(format!("no .tl recipes found in {}", show_paths(&roots)));
    }
    // `from zoo "x"` is satisfied by a linted recipe that publishes `x`, as `tlrun run` would
    // run that recipe first.
    let published = workspace.publishers(&files);
    let mut recipes = Vec::new();
    for path in &files {
        // A file that cannot be read is a finding about that file; every other file is still linted.
        recipes.push(workspace.recipe_file(path, args.strict, &published).unwrap_or_else(|reason| RecipeFile::unreadable(path, &reason)));
    }
    workspace.check_recipe_graph(&mut recipes, &published);
    for recipe in &mut recipes {
        recipe.sort_diagnostics();
    }

    let views: Vec<FileDiagnostics<'_>> = recipes
        .iter()
        .map(|recipe| FileDiagnostics { path: &recipe.display, source: &recipe.source, diagnostics: &recipe.diagnostics })
        .collect();
    let all = || recipes.iter().flat_map(|recipe| recipe.diagnostics.iter());
    let errors = all().filter(|diagnostic| diagnostic.severity() == Severity::Error).count();
    let warnings = all().filter(|diagnostic| diagnostic.severity() == Severity::Warning).count();
    match args.format {
        OutputFormat::Json => print!("{}", render::json(&views)),
        OutputFormat::Github => print!("{}", render::github(&views)),
        OutputFormat::Human => {
            let style = if std::io::stdout().is_terminal() { HumanStyle::Colour } else { HumanStyle::Plain };
            for view in &views {
                print!("{}", render::human(view, style));
            }
            println!("{}", summary(recipes.len(), errors, warnings));
        }
    }
    if !args.strict {
        note_unchecked_zoo_entries(&recipes, workspace.zoo, &published);
    }
    let failed = errors > 0 || (warnings > 0 && matches!(args.deny, Some(Deny::Warnings)));
    u8::from(failed)
}

/// Without a zoo folder, `from zoo "…"` cannot be checked: say so on stderr (stdout stays the
/// report, valid JSON included), so a CI without weights learns of it. `--strict` makes it TL1004.
fn note_unchecked_zoo_entries(recipes: &[RecipeFile], zoo: &crate::zoo::Zoo, published: &super::disk_world::Published) {
    if zoo.exists() {
        return;
    }
    let unchecked: Vec<String> = recipes
        .iter()
        .flat_map(|recipe| {
            recipe
                .zoo_entries
                .iter()
                .filter(|entry| !published.contains_key(&entry.value))
                .map(move |entry| format!("`{}` in {}", entry.value, recipe.display))
        })
        .collect();
    if !unchecked.is_empty() {
        let shown: Vec<&str> = unchecked.iter().take(5).map(String::as_str).collect();
        let more = if unchecked.len() > 5 { format!(" and {} more", unchecked.len() - 5) } else { String::new() };
        eprintln!(
            "note: there is no zoo folder at {}, so zoo entries were not checked: {}{more}; point --zoo or TLRUN_ZOO at the zoo, and `--strict` makes this an error",
            zoo.root.display(),
            shown.join(", ")
        );
    }
}

fn summary(files: usize, errors: usize, warnings: usize) -> String {
    let plural = |count: usize, word: &str| format!("{count} {word}{}", if count == 1 { "" } else { "s" });
    format!("{} checked: {}, {}", plural(files, "recipe"), plural(errors, "error"), plural(warnings, "warning"))
}

fn show_paths(paths: &[PathBuf]) -> String {
    paths.iter().map(|path| path.display().to_string()).collect::<Vec<_>>().join(", ")
}

/// Every *.tl under `root` (or `root` itself), sorted, skipping hidden folders and target/. Each
/// folder is walked once per canonical path, so a symbolic-link loop ends.
fn collect_recipes(root: &Path, files: &mut Vec<PathBuf>) -> Result<(), String> {
    let mut visited = std::collections::BTreeSet::new();
    collect_recipes_once(root, files, &mut visited)
}

fn collect_recipes_once(root: &Path, files: &mut Vec<PathBuf>, visited: &mut std::collections::BTreeSet<PathBuf>) -> Result<(), String> {
    if !root.exists() {
        return Err(format!("{} does not exist", root.display()));
    }
    if !root.is_dir() {
        // A named file is linted whatever it is; reading it says what is wrong with it.
        files.push(root.to_path_buf());
        return Ok(());
    }
    if !visited.insert(std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf())) {
        return Ok(());
    }
    let entries = std::fs::read_dir(root).map_err(|error| format!("cannot read {}: {error}", root.display()))?;
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|entry| entry.path()).collect();
    paths.sort();
    for path in paths {
        let name = path.file_name().map(|name| name.to_string_lossy().into_owned()).unwrap_or_default();
        if path.is_dir() {
            if !name.starts_with('.') && name != "target" && name != "runs" {
                collect_recipes_once(&path, files, visited)?;
            }
        } else if name.ends_with(".tl") {
            files.push(path);
        }
    }
    Ok(())
}
