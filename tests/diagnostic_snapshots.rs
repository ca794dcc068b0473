//! One bad recipe per diagnostic code (tests/cases/TLxxxx.tl or TLxxxx/), each with an insta
//! snapshot of its uncoloured output, plus the tidy test that keeps codes, cases, snapshots and
//! docs in step.

use std::path::{Path, PathBuf};
use std::process::Command;

use tlrun::arch::Stats;
use tlrun::check::{PathKind, World, ZooCard, ZooLookup};
use tlrun::diagnostics::Code;
use tlrun::render::{self, FileDiagnostics, HumanStyle};

/// A made-up outside world: two zoo entries and a few data folders.
struct FakeWorld {
    strict: bool,
}

impl World for FakeWorld {
    fn zoo_entry(&self, name: &str) -> ZooLookup {
        let card = |architecture: &str| ZooCard {
            source: None,
            name: name.to_string(),
            architecture: architecture.to_string(),
            stats: Stats::imagenet(224),
            trained_on: "ImageNet-1k".to_string(),
            source_valid: None,
        };
        match name {
            "resnet18-imagenet" => ZooLookup::Found(card("resnet18")),
            "resnet50-imagenet" => ZooLookup::Found(card("resnet50")),
            _ => ZooLookup::Missing { available: vec!["resnet18-imagenet".into(), "resnet50-imagenet".into()] },
        }
    }

    fn class_folders(&self, folder: &str) -> Option<Vec<String>> {
        match folder {
            "data/train" => Some(vec!["cat".into(), "dog".into()]),
            "data/valid-partial" => Some(vec!["cat".into()]),
            "data/empty" => Some(vec![]),
            "data/one" => Some(vec!["cat".into()]),
            _ => None,
        }
    }

    fn class_image_counts(&self, folder: &str) -> Option<Vec<usize>> {
        (folder == "data/one").then(|| vec![1])
    }

    fn strict(&self) -> bool {
        self.strict
    }

    fn path_kind(&self, path: &str) -> PathKind {
        match path {
            "data/train.zip" => PathKind::File,
            _ if self.class_folders(path).is_some() => PathKind::Folder,
            _ => PathKind::Missing,
        }
    }
}

fn cases_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/cases")
}

fn render_case(path: &Path) -> (String, Vec<Code>) {
    let source = std::fs::read_to_string(path).unwrap();
    let world = FakeWorld { strict: source.starts_with("# lint: strict") };
    let stem = path.file_stem().unwrap().to_string_lossy().into_owned();
    let (_, diagnostics) = tlrun::check::check_source(&source, &stem, &world);
    let name = format!("{stem}.tl");
    let view = FileDiagnostics { path: &name, source: &source, diagnostics: &diagnostics };
    (render::human(&view, HumanStyle::Plain), diagnostics.iter().map(|d| d.code).collect())
}

fn snapshot_settings() -> insta::Settings {
    let mut settings = insta::Settings::clone_current();
    settings.set_snapshot_path(cases_dir().join("snapshots"));
    settings.set_prepend_module_to_snapshot(false);
    settings
}

#[test]
fn every_single_file_case_reports_its_code() {
    let mut cases: Vec<PathBuf> = std::fs::read_dir(cases_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "tl"))
        .collect();
    cases.sort();
    assert!(cases.len() >= 25, "expected a case per code, found {}", cases.len());
    for case in cases {
        let stem = case.file_stem().unwrap().to_string_lossy().into_owned();
        // `TL0001.tl`, or `TL0001-what.tl` for a further case of the same code.
        let code_text = stem.split('-').next().unwrap_or(&stem);
        let code = Code::parse(code_text).unwrap_or_else(|| panic!("{stem} is not named after a diagnostic code"));
        let (rendered, codes) = render_case(&case);
        assert!(codes.contains(&code), "{stem}.tl should report {code_text}, reported {codes:?}\n{rendered}");
        snapshot_settings().bind(|| insta::assert_snapshot!(stem.clone(), rendered));
    }
}

/// Cases that need several files run through the real binary (`tlrun lint DIR`).
#[test]
fn multi_file_cases_report_their_code() {
    for code in [Code::RecipeCycle, Code::MissingRecipeInput] {
        let dir = cases_dir().join(code.as_str());
        let output = Command::new(env!("CARGO_BIN_EXE_tlrun")).arg("lint").arg(".").current_dir(&dir).output().unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        assert_eq!(output.status.code(), Some(1), "{stdout}");
        assert!(stdout.contains(code.as_str()), "{stdout}");
        snapshot_settings().bind(|| insta::assert_snapshot!(code.as_str().to_string(), stdout));
    }
}

/// Codes that only the runtime emits are proven by runtime tests instead of lint cases.
const RUNTIME_ONLY: &[Code] =
    &[Code::CorruptImage, Code::NonFiniteLoss, Code::WeightsMismatch, Code::DeviceUnavailable, Code::RunFolderUnwritable, Code::RunFolderUnreadable, Code::Interrupted, Code::RecipeChanged, Code::StepFailed, Code::UnreadableRecipe, Code::ModelCardUnusable, Code::PredictInputUnusable];

#[test]
fn tidy_every_code_has_a_case_a_snapshot_and_a_doc_page() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    // Integration tests, and the unit-test modules of the sources (the text after `#[cfg(test)]`).
    let mut tests_text: String = std::fs::read_dir(root.join("tests"))
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|extension| extension == "rs") && !path.ends_with("diagnostic_snapshots.rs"))
        .map(|path| std::fs::read_to_string(path).unwrap())
        .collect();
    let mut folders = vec![root.join("src")];
    while let Some(folder) = folders.pop() {
        for path in std::fs::read_dir(folder).unwrap().map(|entry| entry.unwrap().path()) {
            if path.is_dir() {
                folders.push(path);
            } else if path.extension().is_some_and(|extension| extension == "rs") {
                let text = std::fs::read_to_string(&path).unwrap();
                if let Some(start) = text.find("#[cfg(test)]") {
                    tests_text.push_str(&text[start..]);
                }
            }
        }
    }
    let mut problems = Vec::new();
    for code in Code::ALL {
        let id = code.as_str();
        let doc = code.documentation();
        for section in ["## What it means", "## Why it matters", "## Example", "## Use instead"] {
            if !doc.contains(section) {
                problems.push(format!("docs/diagnostics/{id}.md lacks `{section}`"));
            }
        }
        if !doc.starts_with(&format!("# {id} {}", code.title())) {
            problems.push(format!("docs/diagnostics/{id}.md must start with `# {id} {}`", code.title()));
        }
        if RUNTIME_ONLY.contains(code) {
            if !tests_text.contains(id) {
                problems.push(format!("{id} is runtime-only but no test in tests/ mentions it"));
            }
            continue;
        }
        let has_case = root.join(format!("tests/cases/{id}.tl")).is_file() || root.join(format!("tests/cases/{id}")).is_dir();
        if !has_case {
            problems.push(format!("{id} has no tests/cases/{id}.tl"));
        }
        if !root.join(format!("tests/cases/snapshots/{id}.snap")).is_file() {
            problems.push(format!("{id} has no snapshot tests/cases/snapshots/{id}.snap"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
