//! Kill a run with SIGKILL in the middle of a stage, resume it, and get the same weights as a run
//! that was never interrupted. Same for Ctrl-C. A changed recipe is refused.

use std::path::Path;
use std::process::{Child, Command, Output};
use std::time::{Duration, Instant};

const RECIPE: &str = r#"recipe "resumable"
seed 9
backbone resnet_small from none
data {
  train synthetic "shapes-target" 16 per class seed 1
  valid synthetic "shapes-target" 2 per class seed 2
  batch 8
  size 16
  augment flip crop 2
}
head { pool avg  dropout 0.3  linear classes }
stage warmup   { train head  epochs 1  lr 3e-3 }
stage finetune { train all  epochs 4  lr 3e-3 spread 10  resize 16 -> 20 }
checkpoint every 2 steps
"#;

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).output().unwrap()
}

fn spawn(dir: &Path, args: &[&str]) -> Child {
    Command::new(env!("CARGO_BIN_EXE_tlrun"))
        .args(args)
        .current_dir(dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

/// Wait until the run has checkpointed in the middle of its second stage.
fn wait_for_mid_stage_checkpoint(run: &Path, child: &mut Child) {
    let started = Instant::now();
    loop {
        if let Ok(text) = std::fs::read_to_string(run.join("checkpoint/position.json")) {
            let position: serde_json::Value = serde_json::from_str(&text).unwrap_or_default();
            if position["stage_index"] == 1 && position["epoch"] == 2 && position["next_batch"].as_u64().unwrap_or(0) > 0 {
                return;
            }
        }
        assert!(child.try_wait().unwrap().is_none(), "the run finished before it could be interrupted");
        assert!(started.elapsed() < Duration::from_secs(120), "no mid-stage checkpoint appeared");
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn weights(run: &Path) -> Vec<u8> {
    std::fs::read(run.join("weights.safetensors")).unwrap()
}

fn losses(run: &Path) -> Vec<(f64, f64)> {
    std::fs::read_to_string(run.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
        .map(|m| (m["train_loss"].as_f64().unwrap(), m["valid_loss"].as_f64().unwrap()))
        .collect()
}

/// flex reduces a batch's mean loss in parallel, so the *reported* loss can differ in its last bits
/// between runs; the weights (compared bit for bit) cannot.
fn assert_same_metrics(a: &[(f64, f64)], b: &[(f64, f64)]) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b) {
        assert!((x.0 - y.0).abs() < 1e-9 && (x.1 - y.1).abs() < 1e-9, "{a:?}\n{b:?}");
    }
}

#[test]
fn sigkill_mid_stage_then_resume_gives_bit_identical_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.tl"), RECIPE).unwrap();
    let straight = tlrun(dir.path(), &["r.tl", "--out", "straight"]);
    assert!(straight.status.success(), "{}", String::from_utf8_lossy(&straight.stderr));

    let mut child = spawn(dir.path(), &["r.tl", "--out", "killed"]);
    wait_for_mid_stage_checkpoint(&dir.path().join("killed"), &mut child);
    child.kill().unwrap(); // SIGKILL: no chance to clean up.
    child.wait().unwrap();
    assert!(!dir.path().join("killed/summary.json").exists(), "the run was really cut short");

    let resumed = tlrun(dir.path(), &["resume", "killed"]);
    let stderr = String::from_utf8_lossy(&resumed.stderr);
    assert!(resumed.status.success(), "{stderr}");
    assert!(stderr.contains("resuming at stage `finetune`"), "{stderr}");
    assert!(weights(&dir.path().join("killed")) == weights(&dir.path().join("straight")), "final weights are bit-identical");
    assert_same_metrics(&losses(&dir.path().join("killed")), &losses(&dir.path().join("straight")));
}

#[test]
fn ctrl_c_checkpoints_exits_130_and_resumes_to_the_same_weights() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.tl"), RECIPE).unwrap();
    let straight = tlrun(dir.path(), &["r.tl", "--out", "straight"]);
    assert!(straight.status.success());

    // No --out: the run goes to runs/resumable/<timestamp>, where `--resume` looks.
    let mut child = spawn(dir.path(), &["r.tl"]);
    let runs = dir.path().join("runs/resumable");
    let started = Instant::now();
    let stopped = loop {
        if let Some(folder) = std::fs::read_dir(&runs).ok().and_then(|mut entries| entries.next()).and_then(Result::ok) {
            break folder.path();
        }
        assert!(started.elapsed() < Duration::from_secs(60), "no run folder appeared");
        std::thread::sleep(Duration::from_millis(2));
    };
    wait_for_mid_stage_checkpoint(&stopped, &mut child);
    let signal = Command::new("kill").args(["-INT", &child.id().to_string()]).status().unwrap();
    assert!(signal.success());
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("TL4010") && stderr.contains("tlrun resume"), "{stderr}");

    let resumed = tlrun(dir.path(), &["r.tl", "--resume"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    // `--resume` picks the newest unfinished run of the recipe: the one Ctrl-C stopped.
    assert!(weights(&stopped) == weights(&dir.path().join("straight")));
}

#[test]
fn resuming_with_a_changed_recipe_is_refused_naming_the_change() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.tl"), RECIPE).unwrap();
    let mut child = spawn(dir.path(), &["r.tl", "--out", "run"]);
    wait_for_mid_stage_checkpoint(&dir.path().join("run"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    std::fs::write(dir.path().join("r.tl"), RECIPE.replace("epochs 4  lr 3e-3", "epochs 4  lr 1e-3")).unwrap();
    let output = tlrun(dir.path(), &["resume", "run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TL4011") && stderr.contains("stage `finetune` (base_lr 0.003 → 0.001)"), "{stderr}");
}

/// `ema` with `keep best`: the stage ends with the best epoch's averaged weights *and* its
/// BatchNorm statistics (the final evaluation reproduces that epoch's valid loss), and a run
/// killed after the best epoch resumes to the same bits. Before the fix the kept copy shared its
/// running statistics with the average, which the later epochs kept overwriting.
#[test]
fn ema_with_keep_best_restores_the_best_statistics_and_resumes_to_the_same_bits() {
    let recipe = RECIPE
        .replace("recipe \"resumable\"", "recipe \"ema-best\"\nema 0.8")
        .replace("stage finetune { train all  epochs 4  lr 3e-3 spread 10  resize 16 -> 20 }", "stage finetune { train all  epochs 4  lr 2e-2 spread 10  keep best valid_loss }");
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("r.tl"), &recipe).unwrap();
    let straight = tlrun(dir.path(), &["r.tl", "--out", "straight"]);
    assert!(straight.status.success(), "{}", String::from_utf8_lossy(&straight.stderr));

    let metrics: Vec<serde_json::Value> = std::fs::read_to_string(dir.path().join("straight/metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    let restored = metrics.iter().find(|m| m["restored"] == true).expect("keep best marks the restored epoch");
    let best_epoch = restored["epoch"].as_u64().unwrap();
    assert!(best_epoch < 4, "this seed's best epoch must come before the last, or the test cannot tell: {metrics:#?}");
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.path().join("straight/summary.json")).unwrap()).unwrap();
    let (best_loss, final_loss) = (restored["valid_loss"].as_f64().unwrap(), summary["final_valid_loss"].as_f64().unwrap());
    assert!((best_loss - final_loss).abs() < 1e-6, "the best epoch's valid loss {best_loss} is what the final evaluation measures, got {final_loss}");

    let mut child = spawn(dir.path(), &["r.tl", "--out", "killed"]);
    wait_for_mid_stage_checkpoint(&dir.path().join("killed"), &mut child);
    child.kill().unwrap();
    child.wait().unwrap();
    let resumed = tlrun(dir.path(), &["resume", "killed"]);
    assert!(resumed.status.success(), "{}", String::from_utf8_lossy(&resumed.stderr));
    assert!(weights(&dir.path().join("killed")) == weights(&dir.path().join("straight")), "final weights are bit-identical");
}
