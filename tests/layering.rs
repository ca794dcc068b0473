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
fn reports_renderers_and_data_never_reach_into_the_runtime() {
    for layer in ["report", "render", "run_files.rs", "atomic_file.rs", "recipe_text.rs", "zoo", "data", "sha256.rs"] {
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

/// The kernels' source files (kernels/src), each with its code lines before its tests.
fn kernel_sources() -> Vec<(PathBuf, Vec<String>)> {
    let mut files = Vec::new();
    rust_files(&Path::new(env!("CARGO_MANIFEST_DIR")).join("kernels/src"), &mut files);
    files
        .into_iter()
        .map(|file| {
            let text = std::fs::read_to_string(&file).unwrap();
            let code = text.lines().take_while(|line| !line.starts_with("mod tests")).map(|line| line.split("//").next().unwrap_or("").to_string()).collect();
            (file, code)
        })
        .collect()
}

#[test]
fn the_kernels_ground_floor_imports_nothing_above_it() {
    let floor = ["geometry", "buffer", "matmul", "isa", "cache"];
    for (file, code) in kernel_sources() {
        let name = file.file_stem().unwrap().to_str().unwrap();
        if !floor.contains(&name) || file.parent().unwrap().ends_with("x86_64") {
            continue;
        }
        for line in code.iter().filter(|line| line.contains("crate::")) {
            let target = line.split("crate::").nth(1).unwrap().split(|c: char| !c.is_alphanumeric() && c != '_').next().unwrap();
            assert!(floor.contains(&target), "{}: the ground floor names `crate::{target}`: {}", file.display(), line.trim());
        }
    }
}

#[test]
fn intrinsics_live_under_the_architecture_folder() {
    for (file, code) in kernel_sources() {
        let in_arch_folder = file.parent().unwrap().ends_with("x86_64");
        // simd.rs: the `multiversion!` macro's target_feature wrappers; isa.rs: the detection.
        let allowed = in_arch_folder || file.ends_with("simd.rs") || file.ends_with("isa.rs");
        for line in &code {
            for name in ["std::arch", "asm!", "target_feature", "is_x86_feature_detected"] {
                assert!(allowed || !line.contains(name), "{}: `{name}` outside kernels/src/x86_64: {}", file.display(), line.trim());
            }
        }
    }
}

#[test]
fn every_fast_path_asks_the_isa_module_not_the_cpu() {
    for (file, code) in kernel_sources() {
        if file.ends_with("isa.rs") {
            continue;
        }
        for line in &code {
            assert!(!line.contains("is_x86_feature_detected"), "{}: asks the CPU directly instead of `isa::current`: {}", file.display(), line.trim());
        }
    }
}

#[test]
fn network_building_lives_below_the_runner_probe_and_lr_find() {
    // The probe and lr-find run a prefix of the program (`interpreter::prepare`), never the
    // runner (which used to be a circle: runner → probe → runner), and build no network
    // themselves.
    for layer in ["runtime/probe.rs", "runtime/lr_finder.rs", "runtime/starting_network.rs"] {
        let found = violations(layer, &["runner::", "super::runner"]);
        assert!(found.is_empty(), "{layer} reaches into the runner:\n{}", found.join("\n"));
    }
    for layer in ["runtime/probe.rs", "runtime/lr_finder.rs"] {
        let found = violations(layer, &["build_backbone", "load_pretrained", "attach_head", "starting_network"]);
        assert!(found.is_empty(), "{layer} builds a network instead of running the program:\n{}", found.join("\n"));
    }
}

#[test]
fn recipe_files_are_read_in_one_place() {
    // Every command reads its recipes through its workspace (`cli/workspace.rs`, whose cache is
    // `cli/recipe_sources.rs`), once each; the runtime is handed resolved paths and reads no
    // recipe text.
    let mut found = violations("cli", &["read_recipe_text", "recipe_text::"]);
    found.retain(|line| !line.contains("cli/recipe_sources.rs"));
    found.extend(violations("runtime", &["read_recipe_text", "recipe_text::", "recipe_links", "syntax::parse"]));
    assert!(found.is_empty(), "recipe text read outside the workspace:\n{}", found.join("\n"));
}

#[test]
fn cli_commands_never_call_up_into_the_cli_root() {
    // Commands import shared printing from `cli/output.rs` and types from their own modules,
    // never from `cli/mod.rs` (which imports them all).
    let found = violations("cli", &["super::usage_error", "super::print_runtime_error", "cli::usage_error", "super::DiskWorld", "super::RecipeFile", "super::GraphFormat"]);
    assert!(found.is_empty(), "commands call up into cli/mod.rs:\n{}", found.join("\n"));
}
