//! The import graph, checked on every test run (the role `cargo modules` would play): which
//! layer may name which. `cargo check --no-default-features --lib` in `.ci/run` proves the
//! burn-free part builds without burn; this test proves the finer rules that a feature flag
//! cannot: the CLI never names burn, reports never reach into the runtime, and the front end
//! does no IO and knows nothing of the runtime, miette or JSON.

use std::path::{Path, PathBuf};

fn rust_files(folder: &Path, found: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(folder).unwrap_or_else(|error| panic!("{}: {error}", folder.display())) {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, found);
        } else if path.extension().is_some_and(|extension| extension == "rs") {
            found.push(path);
        }
    }
}

/// Lines of code under `layer` (a folder or file of src/) that name one of `forbidden`, comments
/// left out.
fn violations(layer: &str, forbidden: &[&str]) -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src").join(layer);
    let mut files = Vec::new();
    if root.is_dir() { rust_files(&root, &mut files) } else { files.push(root) }
    assert!(!files.is_empty(), "no source under {layer}");
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (number, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            for name in forbidden {
                if code.contains(name) {
                    found.push(format!("{}:{}: names `{name}`: {}", file.display(), number + 1, line.trim()));
                }
            }
        }
    }
    found
}

#[test]
fn the_cli_never_names_burn() {
    let found = violations("cli", &["burn::", "burn ::", "use burn"]);
    assert!(found.is_empty(), "the CLI reaches burn only through runtime/:\n{}", found.join("\n"));
}

#[test]
fn reports_and_renderers_never_reach_into_the_runtime() {
    for layer in ["report", "render", "run_files.rs", "atomic_file.rs", "recipe_text.rs", "zoo"] {
        let found = violations(layer, &["runtime::", "burn::", "use burn"]);
        assert!(found.is_empty(), "{layer} builds without the runtime:\n{}", found.join("\n"));
    }
}

#[test]
fn the_front_end_does_no_io_and_knows_no_runtime_miette_or_json() {
    for layer in ["syntax", "check", "plan", "arch", "diagnostics", "span.rs", "limits.rs", "data_counts.rs"] {
        let found = violations(layer, &["std::fs", "File::", "runtime::", "burn::", "use burn", "miette", "serde_json", "println!", "eprintln!"]);
        assert!(found.is_empty(), "{layer} is front end:\n{}", found.join("\n"));
    }
}
