//! The zoo commands, importing torch files, and the make-like walk over recipes.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use burn::prelude::*;
use tlrun::check::{NoWorld, check_source};
use tlrun::runtime::model::Network;
use tlrun::runtime::param_snapshot::snapshot;
use tlrun::runtime::weights::{self, LoadScope};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).env("TLRUN_ZOO", dir.join("zoo")).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

#[test]
fn a_torch_save_file_loads_the_same_tensors_as_its_safetensors_twin() {
    let (recipe, _) = check_source(
        "recipe \"p\"\nbackbone resnet_small from none\ndata { train \"x\" }\ncut after layer3\nhead { pool avg linear 10 }\nstage s { train head epochs 1 }\n",
        "p",
        &NoWorld,
    );
    let recipe = recipe.unwrap();
    let load = |path: &Path| {
        let mut network = Network::new(&recipe, 10, &Device::flex());
        let report = weights::load(&mut network, path, LoadScope::Network).unwrap();
        assert!(report.unused.is_empty(), "{:?}", report.unused);
        snapshot(&network)
    };
    assert_eq!(load(&fixture("resnet_small.pth")), load(&fixture("resnet_small.safetensors")));
}

#[test]
fn zoo_import_list_show_verify_and_tampering() {
    let dir = tempfile::tempdir().unwrap();
    let weights = fixture("resnet_small.pth");
    let imported = tlrun(
        dir.path(),
        &["zoo", "import", weights.to_str().unwrap(), "--name", "small", "--arch", "resnet_small", "--stats", "imagenet", "--size", "32", "--classes", "a,b", "--trained-on", "the parity fixture", "--license", "CC0-1.0"],
    );
    assert!(imported.status.success(), "{}", text(&imported));
    assert!(text(&imported).contains("note: 2 key(s) not used"), "the fc tensors are reported: {}", text(&imported));

    let card = std::fs::read_to_string(dir.path().join("zoo/small/card.toml")).unwrap();
    for field in ["architecture = \"resnet_small\"", "mean = [", "0.485", "input_size = 32", "trained_on = \"the parity fixture\"", "license = \"CC0-1.0\"", "sha256 = \""] {
        assert!(card.contains(field), "{field} in {card}");
    }
    let list = tlrun(dir.path(), &["zoo", "list"]);
    assert!(text(&list).contains("small") && text(&list).contains("resnet_small"), "{}", text(&list));
    let show = tlrun(dir.path(), &["zoo", "show", "small"]);
    assert!(show.status.success() && text(&show).contains("small: ok"), "{}", text(&show));

    // A recipe that names the entry takes its statistics: normalising differently is TL5001.
    std::fs::write(dir.path().join("r.tl"), "recipe \"r\"\nbackbone resnet_small from zoo \"small\"\ndata { train \"x\" normalize mean 0.5 0.5 0.5 std 0.25 0.25 0.25 }\nstage s { train head epochs 1 }\n").unwrap();
    assert!(text(&tlrun(dir.path(), &["lint", "r.tl"])).contains("TL5001"));

    // Tampered weights no longer match the card.
    let path = dir.path().join("zoo/small/weights.safetensors");
    let mut bytes = std::fs::read(&path).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xFF;
    std::fs::write(&path, bytes).unwrap();
    let verify = tlrun(dir.path(), &["zoo", "verify"]);
    assert_eq!(verify.status.code(), Some(1));
    assert!(text(&verify).contains("small: FAILED: sha256"), "{}", text(&verify));

    // Weights of the wrong architecture never enter the zoo.
    let wrong = tlrun(dir.path(), &["zoo", "import", weights.to_str().unwrap(), "--name", "wrong", "--arch", "resnet18"]);
    assert_eq!(wrong.status.code(), Some(1));
    assert!(text(&wrong).contains("TL4006") && !dir.path().join("zoo/wrong").exists(), "{}", text(&wrong));
}

const UPSTREAM: &str = "recipe \"up\"\nseed 1\nbackbone resnet_small from none\ndata { train synthetic \"shapes-source\" 4 per class valid synthetic \"shapes-source\" 2 per class batch 8 size 16 }\nstage s { train all epochs 1 lr 3e-3 }\npublish \"tiny\"\n";
const DOWNSTREAM: &str = "recipe \"down\"\nseed 2\nbackbone resnet_small from zoo \"tiny\"\ndata { train synthetic \"shapes-target\" 4 per class valid synthetic \"shapes-target\" 2 per class batch 8 }\nstage warmup { train head epochs 1 lr 3e-3 }\nexport \"down.safetensors\"\n";

#[test]
fn pipelines_run_dependencies_first_and_only_when_stale() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.tl"), UPSTREAM).unwrap();
    std::fs::write(dir.path().join("down.tl"), DOWNSTREAM).unwrap();

    let dry = tlrun(dir.path(), &["run", "down.tl", "--dry-run"]);
    assert_eq!(String::from_utf8_lossy(&dry.stdout), "would run up.tl: it never ran\nwould run down.tl: up.tl runs first\n");

    let first = tlrun(dir.path(), &["run", "down.tl"]);
    let log = text(&first);
    assert!(first.status.success(), "{log}");
    assert!(log.find("running up.tl").unwrap() < log.find("running down.tl").unwrap(), "{log}");
    assert!(dir.path().join("zoo/tiny/card.toml").is_file() && dir.path().join("down.safetensors").is_file());

    let again = tlrun(dir.path(), &["run", "down.tl"]);
    assert!(text(&again).contains("up.tl: up to date") && text(&again).contains("down.tl: up to date"), "{}", text(&again));

    // A changed upstream recipe makes both stale.
    std::fs::write(dir.path().join("up.tl"), UPSTREAM.replace("seed 1", "seed 3")).unwrap();
    let dry = tlrun(dir.path(), &["run", "down.tl", "--dry-run"]);
    assert_eq!(
        String::from_utf8_lossy(&dry.stdout),
        "would run up.tl: the recipe, its data or its input weights changed\nwould run down.tl: up.tl runs first\n"
    );
    // A changed output file makes its recipe stale.
    std::fs::write(dir.path().join("up.tl"), UPSTREAM).unwrap();
    std::fs::write(dir.path().join("down.safetensors"), b"overwritten").unwrap();
    let dry = tlrun(dir.path(), &["run", "down.tl", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would run down.tl: ") && String::from_utf8_lossy(&dry.stdout).contains("down.safetensors changed since"), "{}", text(&dry));
}

#[test]
fn from_recipe_starts_from_the_other_recipes_export() {
    let dir = tempfile::tempdir().unwrap();
    let up = UPSTREAM.replace("publish \"tiny\"", "export \"up.safetensors\"");
    std::fs::write(dir.path().join("up.tl"), up).unwrap();
    std::fs::write(dir.path().join("down.tl"), DOWNSTREAM.replace("from zoo \"tiny\"", "from recipe \"up.tl\"")).unwrap();
    let output = tlrun(dir.path(), &["run", "down.tl"]);
    let log = text(&output);
    assert!(output.status.success(), "{log}");
    assert!(log.find("running up.tl").unwrap() < log.find("running down.tl").unwrap(), "{log}");
    // The downstream run started from the upstream export: its initial backbone is that file's.
    let read = |path: PathBuf| -> std::collections::BTreeMap<String, Vec<f32>> {
        let (recipe, _) = check_source(&DOWNSTREAM.replace("from zoo \"tiny\"", "from none"), "d", &NoWorld);
        let mut network = Network::new(&recipe.unwrap(), 5, &Device::flex());
        weights::load(&mut network, &path, LoadScope::Backbone).unwrap();
        snapshot(&network).into_iter().filter(|(name, _)| name.starts_with("backbone.")).collect()
    };
    let runs = dir.path().join("runs/down");
    let run = std::fs::read_dir(&runs).unwrap().next().unwrap().unwrap().path();
    assert_eq!(read(run.join("initial.safetensors")), read(dir.path().join("up.safetensors")));
}
