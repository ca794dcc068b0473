//! `tlrun predict` and `tlrun export` on a real run: the run's own preprocessing, its accuracy
//! to the image on its valid folder, every bad file named, models that cannot be used.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).env("TLRUN_ZOO", dir.join("zoo")).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// Image folders drawn by tlrun, a recipe that validates on a folder (with crop resizing, a
/// concat-pool head and flip TTA, so that each part of the preprocessing matters), and its run.
fn trained_run(dir: &Path) -> PathBuf {
    for (split, per_class, seed) in [("train", "6", "1"), ("valid", "5", "2")] {
        let out = format!("data/{split}");
        let exported = tlrun(dir, &["data", "export", "shapes-target", "--out", &out, "--per-class", per_class, "--seed", seed, "--size", "24"]);
        assert!(exported.status.success(), "{}", text(&exported));
    }
    std::fs::write(
        dir.join("p.tl"),
        "recipe \"p\"\nseed 3\nbackbone resnet_small from none\n\
         data { train \"data/train\" valid \"data/valid\" batch 6 size 20 resize_method crop }\n\
         head { pool concat batchnorm dropout 0.2 linear 16 relu linear classes }\n\
         stage s { train all epochs 2 lr 3e-3 }\ntta flip\nexport \"out/p.safetensors\"\n",
    )
    .unwrap();
    let run = tlrun(dir, &["p.tl", "--out", "run"]);
    assert!(run.status.success(), "{}", text(&run));
    dir.join("run")
}

fn evaluation(run: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(run.join("evaluation.json")).unwrap()).unwrap()
}

/// The confusion matrix CSV as rows of counts (the header and class names dropped).
fn confusion_counts(path: &Path) -> Vec<Vec<u64>> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .skip(1)
        .map(|line| line.split(',').skip(1).map(|count| count.parse().unwrap()).collect())
        .collect()
}

#[test]
fn predict_reproduces_the_runs_evaluation_to_the_image_and_names_every_bad_file() {
    let dir = tempfile::tempdir().unwrap();
    let run = trained_run(dir.path());
    let expected = evaluation(&run);
    let expected_confusion: Vec<Vec<u64>> = serde_json::from_value(expected["confusion"].clone()).unwrap();
    let valid_images: u64 = expected_confusion.iter().flatten().sum();
    assert_eq!(valid_images, 25);

    // The run folder and the exported weights (with the card beside them) give the evaluation's
    // confusion matrix, cell for cell, so the same accuracy to the image.
    for model in ["run", "out/p.safetensors"] {
        let output = tlrun(dir.path(), &["predict", model, "data/valid", "--out", "predictions.csv", "--top-k", "3"]);
        assert!(output.status.success(), "{}", text(&output));
        assert_eq!(confusion_counts(&dir.path().join("predictions.confusion.csv")), expected_confusion, "{model}");
        let correct: u64 = (0..expected_confusion.len()).map(|class| expected_confusion[class][class]).sum();
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(stdout.contains(&format!("({correct}/{valid_images})")), "{stdout}");
        let accuracy = expected["accuracy"].as_f64().unwrap();
        assert!((correct as f64 / valid_images as f64 - accuracy).abs() < 1e-12);
        let csv = std::fs::read_to_string(dir.path().join("predictions.csv")).unwrap();
        let mut lines = csv.lines();
        assert_eq!(lines.next(), Some("path,class,probability,class_2,probability_2,class_3,probability_3,truth"));
        let rows: Vec<Vec<&str>> = lines.map(|line| line.split(',').collect()).collect();
        assert_eq!(rows.len(), 25);
        for row in &rows {
            let probabilities: Vec<f64> = [2, 4, 6].iter().map(|column| row[*column].parse().unwrap()).collect();
            assert!(probabilities.windows(2).all(|pair| pair[0] >= pair[1]), "top-k falls: {row:?}");
            assert!(probabilities.iter().sum::<f64>() <= 1.0 + 1e-5 && probabilities[0] > 0.0, "{row:?}");
            // The truth column is the class folder the image came from.
            assert!(row[0].contains(&format!("/{}/", row[7])), "{row:?}");
        }
    }

    // Without its TTA the same model gives other probabilities: the card's `tta flip` was applied.
    let plain = tlrun(dir.path(), &["predict", "run", "data/valid", "--out", "plain.csv", "--tta", "none"]);
    assert!(plain.status.success(), "{}", text(&plain));
    let column = |file: &str| -> Vec<String> {
        std::fs::read_to_string(dir.path().join(file)).unwrap().lines().skip(1).map(|line| line.split(',').nth(2).unwrap().to_string()).collect()
    };
    assert_ne!(column("plain.csv"), column("predictions.csv"));

    // A flat folder with two corrupt files among the valid images: both named, every other
    // image predicted, exit 1 (0 with --skip-bad).
    let mixed = dir.path().join("mixed/deeper");
    std::fs::create_dir_all(&mixed).unwrap();
    for (index, entry) in walk(&dir.path().join("data/valid")).into_iter().enumerate() {
        std::fs::copy(&entry, mixed.join(format!("{index:02}.png"))).unwrap();
    }
    std::fs::write(dir.path().join("mixed/bad1.png"), b"").unwrap();
    std::fs::write(mixed.join("bad2.jpg"), b"not a jpeg at all").unwrap();
    let output = tlrun(dir.path(), &["predict", "run", "mixed", "--out", "mixed.jsonl", "--top-k", "2"]);
    assert_eq!(output.status.code(), Some(1), "{}", text(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(stderr.contains("bad1.png") && stderr.contains("bad2.jpg") && stderr.contains("2 image(s) could not be read"), "{stderr}");
    let lines: Vec<serde_json::Value> =
        std::fs::read_to_string(dir.path().join("mixed.jsonl")).unwrap().lines().map(|line| serde_json::from_str(line).unwrap()).collect();
    assert_eq!(lines.len(), 25);
    assert!(lines.iter().all(|line| line["top"].as_array().unwrap().len() == 2 && line.get("truth").is_none()));
    let skipped = tlrun(dir.path(), &["predict", "run", "mixed", "--out", "mixed.jsonl", "--skip-bad"]);
    assert_eq!(skipped.status.code(), Some(0), "{}", text(&skipped));

    // An input that holds no image is TL4015, before anything is predicted.
    let nothing = tlrun(dir.path(), &["predict", "run", "no-such-folder"]);
    assert_eq!(nothing.status.code(), Some(2));
    assert!(text(&nothing).contains("TL4015") && text(&nothing).contains("no-such-folder"), "{}", text(&nothing));

    // A table on stdout when no --out is given.
    let table = tlrun(dir.path(), &["predict", "run", "mixed/deeper/00.png"]);
    assert!(table.status.success(), "{}", text(&table));
    assert!(String::from_utf8_lossy(&table.stdout).lines().nth(1).unwrap().starts_with("mixed/deeper/00.png"), "{}", text(&table));

    // The report shows the top losses and the most confused pairs.
    let top: Vec<serde_json::Value> = serde_json::from_str(&std::fs::read_to_string(run.join("top_losses.json")).unwrap()).unwrap();
    assert_eq!(top.len(), 9);
    let losses: Vec<f64> = top.iter().map(|entry| entry["loss"].as_f64().unwrap()).collect();
    assert!(losses.windows(2).all(|pair| pair[0] >= pair[1]), "{losses:?}");
    assert!(top.iter().all(|entry| run.join(entry["thumbnail"].as_str().unwrap()).is_file()));
    let report = std::fs::read_to_string(run.join("report.html")).unwrap();
    assert!(report.contains("id=\"top-losses\"") && run.join("top_losses.png").is_file(), "top losses in the report");
    if expected_confusion.iter().enumerate().any(|(row, counts)| counts.iter().enumerate().any(|(column, count)| row != column && *count > 0)) {
        assert!(report.contains("id=\"most-confused\"") && run.join("most_confused.png").is_file());
    }
}

fn walk(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut entries: Vec<PathBuf> = std::fs::read_dir(folder).unwrap().map(|entry| entry.unwrap().path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() { files.extend(walk(&path)) } else { files.push(path) }
    }
    files
}

#[test]
fn models_that_cannot_be_applied_are_tl4014_with_help() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("images")).unwrap();
    std::fs::write(dir.path().join("images/a.png"), b"").unwrap();

    let missing = tlrun(dir.path(), &["predict", "nowhere", "images"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing).contains("TL4014") && text(&missing).contains("help"), "{}", text(&missing));

    // A folder with weights but no card (a run from before cards, an imported backbone).
    std::fs::create_dir_all(dir.path().join("old")).unwrap();
    std::fs::write(dir.path().join("old/weights.safetensors"), b"").unwrap();
    let old = tlrun(dir.path(), &["predict", "old", "images"]);
    assert_eq!(old.status.code(), Some(2));
    assert!(text(&old).contains("TL4014") && text(&old).contains("model.json"), "{}", text(&old));

    // A card that does not describe a network.
    std::fs::write(dir.path().join("old/model.json"), r#"{"format":1,"recipe":"x","architecture":"resnet9000","kept_layers":3,"cut_after":"x","input_channels":3,"head":[],"classes":["a"],"preprocessing":{"size":32,"resize_method":"squash","grey":false,"mean":[0.5],"std":[0.5]},"tta_flip":false,"batch":8}"#).unwrap();
    let unknown = tlrun(dir.path(), &["predict", "old", "images"]);
    assert!(text(&unknown).contains("TL4014") && text(&unknown).contains("resnet9000"), "{}", text(&unknown));
}

/// `predict "…" into "…"` is a step of the recipe's graph after the evaluation; `tlrun run`
/// re-runs it alone when its folder or its output changed, and trains again only when the
/// training's inputs did.
#[test]
fn a_recipes_predict_step_runs_again_only_when_its_folder_or_output_changed() {
    let dir = tempfile::tempdir().unwrap();
    for (out, per_class, seed) in [("data/train", "4", "1"), ("data/new", "2", "5")] {
        let exported = tlrun(dir.path(), &["data", "export", "shapes-target", "--out", out, "--per-class", per_class, "--seed", seed, "--size", "16"]);
        assert!(exported.status.success(), "{}", text(&exported));
    }
    let recipe = "recipe \"p\"\nseed 3\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.25 batch 8 size 16 }\n\
                  stage s { train all epochs 1 lr 3e-3 }\nexport \"out/p.safetensors\"\npredict \"data/new\" into \"out/new.csv\"\n";
    std::fs::write(dir.path().join("p.tl"), recipe).unwrap();
    let graph = tlrun(dir.path(), &["graph", "p.tl", "--format", "json"]);
    assert!(String::from_utf8_lossy(&graph.stdout).contains("\"predict\""), "{}", text(&graph));
    let rows = || std::fs::read_to_string(dir.path().join("out/new.csv")).unwrap().lines().count() - 1;
    let runs = || std::fs::read_dir(dir.path().join("runs/p")).unwrap().count();

    let first = tlrun(dir.path(), &["run", "p.tl"]);
    assert!(first.status.success(), "{}", text(&first));
    assert!(text(&first).contains("predicted 10 image(s)") && text(&first).contains("accuracy"), "{}", text(&first));
    assert_eq!((rows(), runs()), (10, 1));
    let run_folder = std::fs::read_dir(dir.path().join("runs/p")).unwrap().next().unwrap().unwrap().path();
    let steps = std::fs::read_to_string(run_folder.join("steps.jsonl")).unwrap();
    assert!(steps.contains("predict data/new into out/new.csv"), "{steps}");

    let again = tlrun(dir.path(), &["run", "p.tl"]);
    assert!(text(&again).contains("p.tl: up to date"), "{}", text(&again));

    // A new image in the folder: the predictions again, with the same model; no training.
    let first_arrow = std::fs::read_dir(dir.path().join("data/new/arrow")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(first_arrow, dir.path().join("data/new/arrow/999.png")).unwrap();
    let dry = tlrun(dir.path(), &["run", "p.tl", "--dry-run"]);
    assert!(String::from_utf8_lossy(&dry.stdout).contains("would predict p.tl: "), "{}", text(&dry));
    let predicted = tlrun(dir.path(), &["run", "p.tl"]);
    assert!(predicted.status.success() && text(&predicted).contains("training up to date; predicting"), "{}", text(&predicted));
    assert_eq!((rows(), runs()), (11, 1));
    // A deleted output is written again, the same way.
    std::fs::remove_file(dir.path().join("out/new.csv")).unwrap();
    let rewritten = tlrun(dir.path(), &["run", "p.tl"]);
    assert!(text(&rewritten).contains("out/new.csv is missing"), "{}", text(&rewritten));
    assert_eq!((rows(), runs()), (11, 1));
    assert!(text(&tlrun(dir.path(), &["run", "p.tl"])).contains("p.tl: up to date"));

    // A changed training input trains again.
    std::fs::write(dir.path().join("p.tl"), recipe.replace("seed 3", "seed 4")).unwrap();
    let retrained = tlrun(dir.path(), &["run", "p.tl"]);
    assert!(retrained.status.success(), "{}", text(&retrained));
    assert_eq!(runs(), 2);
}
