//! Every recipe we show people must pass `tlrun lint --deny warnings`: pipelines/ and every ```tl
//! block in README.md and docs/.

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn markdown_files() -> Vec<PathBuf> {
    let mut files = vec![root().join("README.md")];
    let mut stack = vec![root().join("docs")];
    while let Some(folder) = stack.pop() {
        for entry in std::fs::read_dir(folder).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "md") {
                files.push(path);
            }
        }
    }
    files.sort();
    files
}

/// The bodies of ```tl fences (not ```tl-bad).
fn tl_blocks(text: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in text.lines() {
        let fence = line.trim_start();
        match &mut current {
            None if fence == "```tl" => current = Some(String::new()),
            Some(block) if fence.starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
            None => {}
        }
    }
    blocks
}

fn lint(dir: &Path, args: &[&str]) -> (Option<i32>, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_tlrun"))
        .arg("lint")
        .args(args)
        .args(["--deny", "warnings"])
        .env("TLRUN_ZOO", dir.join("no-zoo"))
        .current_dir(dir)
        .output()
        .unwrap();
    (output.status.code(), String::from_utf8_lossy(&output.stdout).into_owned())
}

#[test]
fn every_tl_block_in_the_docs_lints_clean() {
    let dir = tempfile::tempdir().unwrap();
    let mut count = 0;
    for file in markdown_files() {
        let text = std::fs::read_to_string(&file).unwrap();
        for (index, block) in tl_blocks(&text).into_iter().enumerate() {
            let name = format!("{}-{index}.tl", file.file_stem().unwrap().to_string_lossy());
            std::fs::write(dir.path().join(&name), &block).unwrap();
            let (code, output) = lint(dir.path(), &[&name]);
            assert_eq!(code, Some(0), "{} block {index} does not lint clean:\n{block}\n{output}", file.display());
            count += 1;
        }
    }
    assert!(count >= 10, "expected the docs to hold recipes, found {count}");
}

#[test]
fn the_shipped_pipelines_lint_clean() {
    let (code, output) = lint(root(), &["pipelines"]);
    assert_eq!(code, Some(0), "{output}");
    assert!(output.contains("3 recipes checked: 0 errors, 0 warnings"), "{output}");
}
