//! `tlrun probe` end to end, the forgetting curve a run draws, and what `publish` keeps for them.

mod common;

use common::*;

fn text(output: &std::process::Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

const UPSTREAM: &str = "recipe \"up\"\nseed 1\nbackbone resnet_small from none\n\
    data { train synthetic \"shapes-source\" 8 per class seed 1  valid split 0.25  batch 16 size 16 }\n\
    stage all { train all epochs 1 lr 3e-3 }\npublish \"up\"\n";

/// A folder whose `up.tl` has run: zoo entry `up` is published, with its feature statistics.
fn published_upstream() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("up.tl"), UPSTREAM).unwrap();
    let run = tlrun(dir.path(), &["run", "up.tl"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    dir
}

/// The probe scores every candidate cut of the pretrained backbone, recommends one, draws the
/// plot, and `--write` puts the recommendation into the recipe only as an edit that lints.
#[test]
fn probe_scores_every_cut_and_writes_a_cut_that_lints() {
    let dir = published_upstream();
    let down = "recipe \"down\"\nseed 2\nbackbone resnet_small from zoo \"up\"\n\
        data { train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 8 size 16 }\n\
        head { pool avg  linear classes }\nstage head { train head epochs 1 lr 1e-2 }\n";
    std::fs::write(dir.path().join("down.tl"), down).unwrap();

    let json = tlrun(dir.path(), &["probe", "down.tl", "--format", "json", "--fine", "--plot", "probe.png"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let value: serde_json::Value = serde_json::from_slice(&json.stdout).unwrap();
    let cuts: Vec<&str> = value["report"]["cuts"].as_array().unwrap().iter().map(|cut| cut["after"].as_str().unwrap()).collect();
    assert_eq!(cuts, ["relu", "layer1.0", "layer1", "layer2.0", "layer2", "layer3.0", "layer3"], "the stem, every stage, and with --fine the blocks between");
    for cut in value["report"]["cuts"].as_array().unwrap() {
        assert!(cut["logme"].as_f64().unwrap().is_finite() && cut["width"].as_u64().unwrap() > 0, "{cut}");
    }
    // publish kept the feature statistics, so the Fréchet distance is measured at its layer.
    assert_eq!(value["report"]["domain"]["frechet"]["layer"], "layer3", "{}", value["report"]["domain"]);
    assert!(value["report"]["domain"]["frechet"]["distance"].as_f64().unwrap() >= 0.0);
    let recommended = value["recommendation"]["cut_after"].as_str().unwrap().to_string();
    assert!(["relu", "layer1", "layer2", "layer3"].contains(&recommended.as_str()), "a cut point, never a block: {recommended}");
    assert!(std::fs::metadata(dir.path().join("probe.png")).unwrap().len() > 1000);

    let write = tlrun(dir.path(), &["probe", "down.tl", "--write"]);
    assert_eq!(write.status.code(), Some(0), "{}", text(&write));
    let written = std::fs::read_to_string(dir.path().join("down.tl")).unwrap();
    assert!(written.contains(&format!("cut after {recommended}\n")), "{written}");
    // The diff shown is the edit and nothing else (it once listed every line after an inserted cut).
    let stdout = String::from_utf8_lossy(&write.stdout);
    let diff: Vec<&str> = stdout.lines().filter(|line| line.starts_with("- ") || line.starts_with("+ ")).collect();
    assert!(diff.len() <= 2 && diff.last() == Some(&format!("+ cut after {recommended}").as_str()), "{stdout}");
    let lint = tlrun(dir.path(), &["lint", "down.tl"]);
    assert_eq!(lint.status.code(), Some(0), "{}", text(&lint));
}

/// A run with a `source` draws the forgetting curve: a point for the pretrained weights, then one
/// per stage. A stage that trains only the head (BatchNorm frozen) leaves the backbone
/// bit-identical, so the source accuracy after it is exactly the pretrained one.
#[test]
fn a_run_with_a_source_measures_what_each_stage_forgot() {
    let dir = published_upstream();
    let recipe = "recipe \"forget\"\nseed 4\nbackbone resnet_small from zoo \"up\"\n\
        data { train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 8 size 16\n\
               source synthetic \"shapes-source\" 8 per class seed 1 }\n\
        head { pool avg  linear classes }\n\
        stage head { train head epochs 1 lr 1e-2 batchnorm frozen }\nstage all { train all epochs 2 lr 3e-2 }\n";
    std::fs::write(dir.path().join("forget.tl"), recipe).unwrap();
    let graph = tlrun(dir.path(), &["graph", "forget.tl", "--format", "json"]);
    let graph: serde_json::Value = serde_json::from_slice(&graph.stdout).unwrap();
    let kinds: Vec<&str> = graph["nodes"].as_array().unwrap().iter().map(|node| node["step"]["step"].as_str().unwrap()).collect();
    assert_eq!(kinds.iter().filter(|kind| **kind == "measure_forgetting").count(), 2, "{kinds:?}");
    assert!(kinds.contains(&"source_baseline") && kinds.contains(&"measure_shift"), "{kinds:?}");

    let run = tlrun(dir.path(), &["run", "forget.tl", "--out", "run"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let points: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("run/forgetting.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let stages: Vec<&str> = points.iter().map(|point| point["stage"].as_str().unwrap()).collect();
    assert_eq!(stages, ["pretrained", "head", "all"]);
    assert_eq!(points[0]["source_accuracy"], points[1]["source_accuracy"], "a frozen backbone forgets nothing");
    assert!(points[0]["target_accuracy"].is_null() && points[2]["target_accuracy"].is_number());
    assert!(points[2]["source_images"].as_u64().unwrap() > 0);
    let shift: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/shift.json")).unwrap()).unwrap();
    assert_eq!(shift["pixel_mean"].as_array().unwrap().len(), 3);
    let report = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(report.contains("Forgetting: source task beside target task") && report.contains("Domain shift"));
    assert!(dir.path().join("run/forgetting.png").is_file());
}

/// `publish` keeps the training images' feature statistics and where the images are; `zoo
/// verify` checks them, and a tampered statistics file fails it.
#[test]
fn publish_keeps_feature_statistics_that_verify_checks() {
    let dir = published_upstream();
    let card = std::fs::read_to_string(dir.path().join("zoo/up/card.toml")).unwrap();
    assert!(card.contains("source_data = \"synthetic:shapes-source:8:1\"") && card.contains("feature_layer = \"layer3\""), "{card}");
    let verify = tlrun(dir.path(), &["zoo", "verify", "up"]);
    assert_eq!(verify.status.code(), Some(0), "{}", text(&verify));
    let show = tlrun(dir.path(), &["zoo", "show", "up"]);
    assert!(text(&show).contains("feature statistics: 60 images at `layer3`, 64 features"), "{}", text(&show));
    let features = dir.path().join("zoo/up/features.safetensors");
    let mut bytes = std::fs::read(&features).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0x55;
    std::fs::write(&features, bytes).unwrap();
    let tampered = tlrun(dir.path(), &["zoo", "verify", "up"]);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(text(&tampered).contains("features.safetensors has sha256"), "{}", text(&tampered));
}

/// `zoo import --source-data FOLDER` records the source images and their feature statistics, so a
/// recipe starting from imported weights draws its forgetting curve without naming a `source`.
#[test]
fn imported_weights_with_source_data_give_a_forgetting_curve() {
    let dir = published_upstream();
    let export = tlrun(dir.path(), &["data", "export", "shapes-source", "--out", "source", "--per-class", "4", "--size", "16"]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    let import = tlrun(
        dir.path(),
        &["zoo", "import", "zoo/up/weights.safetensors", "--name", "imported", "--arch", "resnet_small", "--mean", "0.5", "0.5", "0.5", "--std", "0.25", "0.25", "0.25", "--size", "16", "--source-data", "source"],
    );
    assert_eq!(import.status.code(), Some(0), "{}", text(&import));
    let card = std::fs::read_to_string(dir.path().join("zoo/imported/card.toml")).unwrap();
    assert!(card.contains("feature_layer = \"layer3\"") && card.contains("source_data = \"/"), "{card}");
    assert_eq!(tlrun(dir.path(), &["zoo", "verify", "imported"]).status.code(), Some(0));

    let recipe = "recipe \"after-import\"\nseed 4\nbackbone resnet_small from zoo \"imported\"\n\
        data { train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 8 size 16 }\n\
        head { pool avg  linear classes }\nstage head { train head epochs 1 lr 1e-2 }\n";
    std::fs::write(dir.path().join("after.tl"), recipe).unwrap();
    let run = tlrun(dir.path(), &["run", "after.tl", "--out", "run"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let points = std::fs::read_to_string(dir.path().join("run/forgetting.jsonl")).unwrap();
    assert_eq!(points.lines().count(), 2, "pretrained, then the one stage: {points}");
    let shift: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/shift.json")).unwrap()).unwrap();
    assert_eq!(shift["frechet"]["layer"], "layer3", "{shift}");
}

/// A zoo entry published by a run keeps the images its run held out and the pixel statistics it
/// measured: a later run scores forgetting on those held-out images (comparable with the
/// pretraining's valid accuracy), compares its pixels with the measured statistics, and takes
/// the Fréchet distance at the card's size even when its own first stage trains at another.
#[test]
fn forgetting_is_scored_on_held_out_images_and_shift_compares_like_with_like() {
    let dir = published_upstream();
    let card = std::fs::read_to_string(dir.path().join("zoo/up/card.toml")).unwrap();
    assert!(card.contains("source_valid = \"split:0.25:1\"") && card.contains("source_pixel_mean = ["), "{card}");

    let recipe = "recipe \"down\"\nseed 4\nbackbone resnet_small from zoo \"up\"\n\
        data { train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 8 size 16 }\n\
        head { pool avg  linear classes }\nstage head { train head epochs 1 lr 1e-2  resize 24 }\n";
    std::fs::write(dir.path().join("down.tl"), recipe).unwrap();
    let run = tlrun(dir.path(), &["run", "down.tl", "--out", "run"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    let points: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("run/forgetting.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    // shapes-source, 8 per class, valid split 0.25: 2 of each of the 10 classes were held out.
    assert_eq!(points[0]["scored_on"], "pretraining valid", "{points:?}");
    assert_eq!(points[0]["source_images"], 20, "{points:?}");
    let shift: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join("run/shift.json")).unwrap()).unwrap();
    assert_eq!(shift["frechet"]["size"], 16, "the card's size, not the stage's 24: {shift}");
    assert_eq!(shift["source_pixel_mean"].as_array().map(Vec::len), Some(3), "{shift}");
    let report = std::fs::read_to_string(dir.path().join("run/report.html")).unwrap();
    assert!(report.contains("the pretraining held out"), "the report says where forgetting was scored");
    assert!(report.contains("the pretraining images&#39;") || report.contains("the pretraining images'"), "and what the pixels are compared with");
}

/// `probe --backbones`: each zoo entry probed on the recipe's data, ranked by LogME with H-score
/// and PARC beside it. An entry trained on the target task itself scores above one that barely
/// left its random start on each of the three metrics (the linear probe's 20 held-out images are
/// too few to order them); an unknown entry is an error that names it.
#[test]
fn probe_ranks_zoo_entries_as_backbones() {
    let dir = tempfile::tempdir().unwrap();
    let pretrain = |name: &str, task: &str, epochs: u32, lr: &str| {
        format!(
            "recipe \"{name}\"\nseed 1\nbackbone resnet_small from none\n\
             data {{ train synthetic \"{task}\" 12 per class seed 1  valid split 0.25  batch 16 size 16 }}\n\
             stage all {{ train all epochs {epochs} lr {lr} }}\npublish \"{name}\"\n"
        )
    };
    for (name, task, epochs, lr) in [("trained", "shapes-target", 6, "5e-3"), ("barely", "shapes-source", 1, "1e-6")] {
        std::fs::write(dir.path().join(format!("{name}.tl")), pretrain(name, task, epochs, lr)).unwrap();
        let run = tlrun(dir.path(), &["run", &format!("{name}.tl")]);
        assert_eq!(run.status.code(), Some(0), "{}", text(&run));
    }
    // The recipe's own backbone is another network (its cut and groups do not apply to the entries).
    let down = "recipe \"down\"\nseed 2\nbackbone resnet18 from none\n\
        data { train synthetic \"shapes-target\" 24 per class seed 3  valid split 0.25  batch 8 size 16 }\n\
        cut after layer4\nhead { pool avg  linear classes }\nstage head { train head epochs 1 lr 1e-2 }\n";
    std::fs::write(dir.path().join("down.tl"), down).unwrap();

    let json = tlrun(dir.path(), &["probe", "down.tl", "--backbones", "all", "--format", "json"]);
    assert_eq!(json.status.code(), Some(0), "{}", text(&json));
    let rows: Vec<serde_json::Value> = serde_json::from_slice(&json.stdout).unwrap();
    let entries: Vec<&str> = rows.iter().map(|row| row["entry"].as_str().unwrap()).collect();
    assert_eq!(entries, ["trained", "barely"], "sorted by LogME, best first: {rows:?}");
    for metric in ["logme", "hscore", "parc"] {
        let (trained, barely) = (rows[0][metric].as_f64().unwrap(), rows[1][metric].as_f64().unwrap());
        assert!(trained > barely, "{metric}: {trained} against {barely}");
    }
    assert!(rows.iter().all(|row| row["architecture"] == "resnet_small" && row["logme_cut"].is_string()));

    let table = tlrun(dir.path(), &["probe", "down.tl", "--backbones", "trained"]);
    assert_eq!(table.status.code(), Some(0), "{}", text(&table));
    assert!(String::from_utf8_lossy(&table.stdout).contains("trained") && String::from_utf8_lossy(&table.stdout).contains("PARC"));

    let unknown = tlrun(dir.path(), &["probe", "down.tl", "--backbones", "trained", "nope"]);
    assert_eq!(unknown.status.code(), Some(1), "{}", text(&unknown));
    assert!(text(&unknown).contains("backbone `nope`"), "{}", text(&unknown));
}

/// `regularise lwf` end to end: from a zoo entry that keeps its classifier the run trains with the
/// term; from a file whose classifier is not torchvision's `fc` (a head with dropout exports as
/// `head.N.`), the run stops with TL4006 naming the file, before any stage.
#[test]
fn lwf_runs_from_a_zoo_entry_and_names_a_file_without_a_classifier() {
    let dir = published_upstream();
    let down = |backbone: &str| {
        format!(
            "recipe \"down\"\nseed 2\nbackbone resnet_small from {backbone}\n\
             data {{ train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 8 size 16 }}\n\
             head {{ pool avg  linear classes }}\nregularise lwf 1 2\n\
             stage head {{ train head epochs 1 lr 1e-2 }}\nstage all {{ train all epochs 1 lr 1e-3 spread 10 }}\n"
        )
    };
    std::fs::write(dir.path().join("down.tl"), down("zoo \"up\"")).unwrap();
    let plan = tlrun(dir.path(), &["plan", "down.tl"]);
    assert!(text(&plan).contains("LwF, λ 1"), "{}", text(&plan));
    let run = tlrun(dir.path(), &["run", "down.tl"]);
    assert_eq!(run.status.code(), Some(0), "{}", text(&run));

    let other = "recipe \"other\"\nseed 1\nbackbone resnet_small from none\n\
        data { train synthetic \"shapes-source\" 4 per class seed 1  valid split 0.25  batch 16 size 16 }\n\
        head { pool avg  dropout 0.1  linear classes }\nstage all { train all epochs 1 lr 1e-3 }\nexport \"other.safetensors\"\n";
    std::fs::write(dir.path().join("other.tl"), other).unwrap();
    let export = tlrun(dir.path(), &["run", "other.tl"]);
    assert_eq!(export.status.code(), Some(0), "{}", text(&export));
    std::fs::write(dir.path().join("down.tl"), down("file \"other.safetensors\" { size 16 }")).unwrap();
    let refused = tlrun(dir.path(), &["run", "down.tl"]);
    assert_eq!(refused.status.code(), Some(1), "{}", text(&refused));
    assert!(text(&refused).contains("TL4006") && text(&refused).contains("other.safetensors") && text(&refused).contains("fc.weight"), "{}", text(&refused));
}
