//! `sweep { … }`: every variant a normal run in its own folder, up-to-date variants skipped,
//! `--jobs 2` giving the sequential run's results to the bit, summaries over seeds, and a paired
//! comparison of two sweeps with its interval.

use std::path::Path;
use std::process::{Command, Output};

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).env("TLRUN_ZOO", dir.join("zoo")).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

fn summary(dir: &Path, recipe: &str) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(dir.join(format!("runs/{recipe}/sweep/summary.json"))).unwrap()).unwrap()
}

const RECIPE: &str = "recipe \"sw\"\nseed 1\nbackbone resnet_small from none\n\
    data { train synthetic \"shapes-target\" 4 per class seed 3 valid synthetic \"shapes-target\" 4 per class seed 4 batch 5 size 16 }\n\
    stage s { train all epochs 1 lr 3e-3 }\nexport \"out/sw.safetensors\"\nsweep { seed 0 1 2  lr s 1e-3 1e-2 }\n";

#[test]
fn a_sweep_runs_every_variant_once_and_summarises_it_over_seeds() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("sw.tl"), RECIPE).unwrap();
    let first = tlrun(dir.path(), &["run", "sw.tl"]);
    assert!(first.status.success(), "{}", text(&first));
    let sweep = dir.path().join("runs/sw/sweep");
    let names = ["seed=0,s.lr=1e-3", "seed=0,s.lr=1e-2", "seed=1,s.lr=1e-3", "seed=1,s.lr=1e-2", "seed=2,s.lr=1e-3", "seed=2,s.lr=1e-2"];
    for name in names {
        let run = sweep.join(name);
        assert!(run.join("weights.safetensors").is_file() && run.join("variant.json").is_file(), "{name}");
        // The variant is the recipe with its values written in, and no export (each variant's
        // model stays in its folder).
        let recipe = std::fs::read_to_string(run.join("recipe.tl")).unwrap();
        let (seed, rate) = (&name[5..6], &name[12..]);
        assert!(recipe.contains(&format!("seed {seed}\n")) && recipe.contains(&format!("lr {rate} }}")) && !recipe.contains("sweep") && !recipe.contains("export"), "{recipe}");
    }
    assert!(!dir.path().join("out/sw.safetensors").exists());
    // Seeds really differ, and each value reached the run: every variant's weights differ.
    let weights: Vec<Vec<u8>> = names.iter().map(|name| std::fs::read(sweep.join(name).join("weights.safetensors")).unwrap()).collect();
    for (index, a) in weights.iter().enumerate() {
        assert!(weights[index + 1..].iter().all(|b| a != b), "variant {} has another's weights", names[index]);
    }
    let summary = summary(dir.path(), "sw");
    assert_eq!(summary["variants"].as_array().unwrap().len(), 6);
    let groups = summary["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2, "one group per lr, over 3 seeds");
    for group in groups {
        assert_eq!(group["seeds"], 3);
        let lr = group["values"]["s.lr"].as_str().unwrap();
        let accuracies: Vec<f64> = summary["variants"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|variant| variant["values"]["s.lr"] == lr)
            .map(|variant| variant["final_valid_accuracy"].as_f64().unwrap())
            .collect();
        let mean = accuracies.iter().sum::<f64>() / 3.0;
        let std = (accuracies.iter().map(|a| (a - mean).powi(2)).sum::<f64>() / 2.0).sqrt();
        assert!((group["mean"].as_f64().unwrap() - mean).abs() < 1e-12 && (group["std"].as_f64().unwrap() - std).abs() < 1e-12, "{group}");
    }
    assert!(sweep.join("summary.html").is_file() && sweep.join("summary.png").is_file());
    assert!(String::from_utf8_lossy(&first.stdout).contains("(n=3)"), "{}", text(&first));

    // Up to date: nothing runs again.
    let again = tlrun(dir.path(), &["run", "sw.tl"]);
    assert_eq!(text(&again).matches(": up to date").count(), 6, "{}", text(&again));

    // --jobs 2: two processes with one thread each give the same runs to the bit.
    let parallel = tlrun(dir.path(), &["run", "sw.tl", "--force", "--jobs", "2", "--out", "parallel"]);
    assert!(parallel.status.success(), "{}", text(&parallel));
    assert_eq!(text(&parallel).matches("] seed=").count(), 6, "one line per finished job: {}", text(&parallel));
    for (name, sequential) in names.iter().zip(&weights) {
        assert_eq!(&std::fs::read(dir.path().join("parallel").join(name).join("weights.safetensors")).unwrap(), sequential, "{name}");
    }

    // Two sweeps over the same seeds: the paired difference and its interval.
    std::fs::write(dir.path().join("other.tl"), RECIPE.replace("recipe \"sw\"", "recipe \"other\"").replace("  lr s 1e-3 1e-2", "")).unwrap();
    assert!(tlrun(dir.path(), &["run", "other.tl"]).status.success());
    let compared = tlrun(dir.path(), &["compare", "runs/sw/sweep", "runs/other/sweep"]);
    let printed = String::from_utf8_lossy(&compared.stdout);
    assert!(printed.contains("sw beats other by") || printed.contains("sw trails other by"), "{printed}");
    assert!(printed.contains("95% CI") && printed.contains("6 pairs, paired t"), "{printed}");
    let page = std::fs::read_to_string(dir.path().join("compare.html")).unwrap();
    assert!(page.contains("Sweeps compared") && page.contains("6 pairs, paired t") && page.contains("(n=3)"), "{page}");
    // Two sweeps of one recipe are named by their folders.
    let same_recipe = tlrun(dir.path(), &["compare", "runs/sw/sweep", "parallel"]);
    let printed = String::from_utf8_lossy(&same_recipe.stdout);
    assert!(printed.contains("runs/sw/sweep beats parallel by") || printed.contains("runs/sw/sweep trails parallel by"), "{printed}");
}

#[test]
fn lint_reports_a_bad_sweep_value_on_the_value() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("bad.tl"), RECIPE.replace("lr s 1e-3 1e-2", "lr s 1e-3 -1  epochs t 2")).unwrap();
    let output = tlrun(dir.path(), &["lint", "bad.tl", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let diagnostics: Vec<serde_json::Value> = serde_json::from_str(&String::from_utf8_lossy(&output.stdout)).unwrap();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert!(codes.contains(&"TL2002") && codes.contains(&"TL1014"), "{diagnostics:#?}");
    let rate = diagnostics.iter().find(|d| d["code"] == "TL2002").unwrap();
    assert!(rate["message"].as_str().unwrap().starts_with("with s.lr -1:"), "{rate}");
}
