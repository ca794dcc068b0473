//! Runtime tests on tiny synthetic data, on the CPU: what the recipe says is what burn does.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use common::*;
use tlrun::runtime::model::Network;
use tlrun::runtime::param_snapshot::snapshot;
use tlrun::runtime::runner::{self, RunOptions};
use tlrun::runtime::weights::{self, LoadScope};
use tlrun::zoo::Zoo;

fn changed(before: &BTreeMap<String, Vec<f32>>, after: &BTreeMap<String, Vec<f32>>, prefix: &str) -> (usize, usize) {
    let selected: Vec<&String> = before.keys().filter(|path| path.starts_with(prefix)).collect();
    let moved = selected.iter().filter(|path| before[**path] != after[**path]).count();
    (moved, selected.len())
}

#[test]
fn frozen_groups_are_bit_identical_and_batchnorm_frozen_keeps_statistics() {
    let data = tiny_data();
    let recipe = recipe(&format!("{STAGES}stage s {{ train layer3 head epochs 1 lr 1e-2 batchnorm frozen }}\n"));
    let (before, after) = train_stage(&recipe, &data);
    for frozen in ["backbone.conv1.", "backbone.bn1.", "backbone.layer1.", "backbone.layer2."] {
        let (moved, total) = changed(&before, &after, frozen);
        assert!(total > 0, "{frozen} has tensors");
        assert_eq!(moved, 0, "{frozen}: {moved} of {total} tensors changed while frozen");
    }
    let (moved, total) = changed(&before, &after, "backbone.layer3.");
    assert_eq!(moved, total, "every tensor of the trained layer3 moves, running statistics included");
    assert!(before["head.linears.0.weight"] != after["head.linears.0.weight"]);
}

#[test]
fn batchnorm_train_lets_frozen_batchnorms_move_but_not_convolutions() {
    let data = tiny_data();
    let recipe = recipe(&format!("{STAGES}stage s {{ train head epochs 1 lr 1e-2 batchnorm train }}\n"));
    let (before, after) = train_stage(&recipe, &data);
    assert_ne!(before["backbone.bn1.running_mean"], after["backbone.bn1.running_mean"]);
    assert_ne!(before["backbone.layer1.0.bn1.running_var"], after["backbone.layer1.0.bn1.running_var"]);
    assert_ne!(before["backbone.layer2.0.downsample.bn.running_mean"], after["backbone.layer2.0.downsample.bn.running_mean"]);
    assert_ne!(before["backbone.bn1.gamma"], after["backbone.bn1.gamma"], "fastai's train_bn trains the affine weights too");
    for conv in ["backbone.conv1.weight", "backbone.layer1.0.conv1.weight", "backbone.layer2.0.downsample.conv.weight"] {
        assert_eq!(before[conv], after[conv], "{conv} is frozen");
    }
}

/// With plain SGD, one step moves a group with multiplier m exactly m times as far as with 1.
#[test]
fn multipliers_scale_each_group_step_exactly() {
    let data = tiny_data();
    let base = format!("{STAGES}stage s {{ train all epochs 1 lr 0.05 optimizer sgd momentum 0 schedule constant");
    let scaled = recipe(&format!("{base} multipliers {{ layer1 0.1 layer2 0.5 }} }}\n"));
    let plain = recipe(&format!("{base} }}\n"));
    let initial = initial_network(&plain, data.classes.len());
    let (before, scaled_after) = one_step(&scaled, &data, &initial);
    let (plain_before, plain_after) = one_step(&plain, &data, &initial);
    assert_eq!(before, plain_before, "same seed, same initial weights");
    let ratio = |path: &str| {
        let moved = |after: &BTreeMap<String, Vec<f32>>| -> f64 {
            before[path].iter().zip(&after[path]).map(|(a, b)| f64::from(b - a).powi(2)).sum::<f64>().sqrt()
        };
        moved(&scaled_after) / moved(&plain_after)
    };
    for (path, expected) in [
        ("backbone.layer1.0.conv1.weight", 0.1),
        ("backbone.layer2.1.conv2.weight", 0.5),
        ("backbone.layer3.0.conv1.weight", 1.0),
        ("head.linears.0.weight", 1.0),
    ] {
        let measured = ratio(path);
        assert!((measured - expected).abs() < 1e-4 * expected.max(1.0), "{path}: moved {measured}x, expected {expected}x");
    }
}

fn run(dir: &Path, text: &str, out: &str) -> runner::RunOutcome {
    let path = dir.join("recipe.tl");
    std::fs::write(&path, text).unwrap();
    let recipe = recipe(text);
    let options = RunOptions {
        device: "cpu".into(),
        out: Some(dir.join(out)),
        zoo: Zoo::locate(Some(&dir.join("zoo"))),
        runs_root: dir.to_path_buf(),
        interrupt: None,
    };
    // What `tlrun run` resolves in its workspace: these recipes start from a file or from none.
    let pretrained = match &recipe.backbone.weights {
        tlrun::check::recipe::Weights::File(file) => Some(dir.join(file)),
        tlrun::check::recipe::Weights::Random => None,
        other => panic!("the runtime tests start from a file or from none, not {other:?}"),
    };
    let (runnable, _) = tlrun::check::Runnable::new(Some(recipe), Vec::new()).unwrap();
    runner::run(&runnable, &path, text, pretrained.as_deref(), &options).unwrap_or_else(|failure| panic!("{:?}", failure.diagnostic))
}

const END_TO_END: &str = r#"recipe "e2e"
seed 11
backbone resnet_small from none
data { train "data/train" valid "data/valid" batch 10 augment flip }
stage warmup { train head epochs 1 lr 3e-3 }
stage finetune { train all epochs 4 lr 3e-3 spread 10 resize 16 -> 24 batchnorm frozen }
export "out/e2e.safetensors"
"#;

#[test]
fn a_recipe_runs_end_to_end_deterministically_and_learns() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 12, 1);
    write_dataset(&dir.path().join("data/valid"), 4, 2);
    let first = run(dir.path(), END_TO_END, "run1");
    // Determinism across runs, each in a process of its own: flex's random generator is global to
    // a process, and this binary's other tests draw from it in parallel (one failure in a full
    // CI suite came from that, not from tlrun).
    let weights_of_a_process = |out: &str| {
        let output = tlrun(dir.path(), &["recipe.tl", "--force", "--out", out]);
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        (std::fs::read(dir.path().join(out).join("weights.safetensors")).unwrap(), std::fs::read_to_string(dir.path().join(out).join("evaluation.json")).unwrap())
    };
    let (once, again) = (weights_of_a_process("process1"), weights_of_a_process("process2"));
    assert!(once.0 == again.0 && once.1 == again.1, "the same recipe and seed give the same weights and evaluation");

    let sizes: Vec<u32> = first.metrics.iter().map(|m| m.size).collect();
    assert_eq!(sizes, vec![32, 16, 16, 24, 24], "warmup at the data size (resnet_small: 32px), then the resize steps");
    assert!(first.metrics.last().unwrap().train_loss < first.metrics[0].train_loss, "loss went down: {:?}", first.metrics);
    assert_eq!(first.metrics[1].learning_rates.len(), 5, "every group trains in finetune");
    let read = |run: &str, file: &str| std::fs::read(dir.path().join(run).join(file)).unwrap();

    let metrics = |run: &str| -> Vec<(f64, f64)> {
        String::from_utf8(read(run, "metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .map(|m| (m["train_loss"].as_f64().unwrap(), m["valid_accuracy"].as_f64().unwrap()))
            .collect()
    };
    assert_eq!(metrics("process1"), metrics("process2"), "same seed, same epochs");
    for file in ["recipe.tl", "resolved.json", "plan.txt", "lr_steps.jsonl", "movement.json", "evaluation.json", "summary.json"] {
        assert!(dir.path().join("run1").join(file).is_file(), "{file} written");
    }
    let leftovers: Vec<PathBuf> = std::fs::read_dir(dir.path().join("run1")).unwrap().map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".partial")).collect();
    assert!(leftovers.is_empty(), "no half-written files: {leftovers:?}");

    // The export loads back: same tensors, torchvision names.
    let exported = first.exported[0].clone();
    let device = Device::flex();
    let mut network = Network::new(&recipe(END_TO_END), 5, &device);
    weights::load(&mut network, &exported, LoadScope::Network).unwrap();
    let mut reference = Network::new(&recipe(END_TO_END), 5, &device);
    weights::load(&mut reference, &dir.path().join("run1/weights.safetensors"), LoadScope::Network).unwrap();
    assert_eq!(snapshot(&network), snapshot(&reference));
    let bytes = std::fs::read(&exported).unwrap();
    let header_length = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let header = String::from_utf8_lossy(&bytes[8..8 + header_length]);
    for key in ["\"conv1.weight\"", "\"layer2.0.downsample.0.weight\"", "\"layer2.0.downsample.1.running_mean\"", "\"fc.weight\"", "\"bn1.bias\""] {
        assert!(header.contains(key), "exported file has {key}: {header}");
    }
}

#[test]
fn weights_of_another_architecture_are_refused_naming_every_tensor() {
    let dir = tempfile::tempdir().unwrap();
    let device = Device::flex();
    let small = recipe(&format!("{STAGES}stage s {{ train head epochs 1 }}\n"));
    let network = Network::new(&small, 5, &device);
    let path = dir.path().join("small.safetensors");
    weights::save(&network, &path).unwrap();
    let wide = recipe(r#"recipe "w"
backbone resnet18 from none
data { train "x" }
stage s { train head epochs 1 }
"#);
    let mut target = Network::new(&wide, 5, &device);
    let error = weights::load(&mut target, &path, LoadScope::Backbone).unwrap_err();
    assert_eq!(error.code.as_str(), "TL4006");
    assert!(error.message.contains("tensor `backbone.conv1.weight`: the network has shape [64, 3, 7, 7], the file [16, 3, 3, 3]"), "{}", error.message);
    assert!(error.message.contains("backbone.layer4.0.conv1.weight` is missing from the file"), "{}", error.message);
}

#[test]
fn a_corrupt_image_is_named_or_skipped_as_the_recipe_says() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 4, 1);
    std::fs::write(dir.path().join("data/train/arrow/broken.png"), b"\x89PNG\r\n\x1a\n truncated").unwrap();
    // A second bad file in another class: a failing run names both, not just the first.
    std::fs::write(dir.path().join("data/train/checker/empty.png"), b"").unwrap();
    let recipe_text = |policy: &str| format!(
        "recipe \"c\"\nbackbone resnet_small from none\ndata {{ train \"data/train\" valid split 0.25 batch 8 size 16 corrupt {policy} }}\nstage s {{ train all epochs 1 }}\n");
    std::fs::write(dir.path().join("fail.tl"), recipe_text("fail")).unwrap();
    std::fs::write(dir.path().join("skip.tl"), recipe_text("skip")).unwrap();
    let failed = tlrun(dir.path(), &["fail.tl", "--out", "run-fail"]);
    let stderr = String::from_utf8_lossy(&failed.stderr);
    assert_eq!(failed.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TL4003") && stderr.contains("2 images cannot be decoded"), "{stderr}");
    assert!(stderr.contains("broken.png") && stderr.contains("empty.png"), "{stderr}");
    let skipped = tlrun(dir.path(), &["skip.tl", "--out", "run-skip"]);
    let stderr = String::from_utf8_lossy(&skipped.stderr);
    assert_eq!(skipped.status.code(), Some(0), "{stderr}");
    assert!(stderr.contains("skipped") && stderr.contains("broken.png") && stderr.contains("empty.png"), "{stderr}");
}

#[test]
fn an_exploding_loss_stops_the_stage_and_keeps_the_last_good_weights() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 4, 1);
    std::fs::write(dir.path().join("boom.tl"), "recipe \"boom\"\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.25 batch 4 size 16 }\nstage explode { train all epochs 3 lr 1e30 optimizer sgd momentum 0 schedule constant }\n").unwrap();
    let output = tlrun(dir.path(), &["boom.tl", "--out", "run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TL4005") && stderr.contains("stage `explode`, epoch 1, step"), "{stderr}");
    assert!(dir.path().join("run/weights.safetensors").is_file(), "last good weights kept");
}

#[test]
fn an_unavailable_device_or_run_folder_is_a_diagnostic() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 2, 1);
    std::fs::write(dir.path().join("r.tl"), "recipe \"r\"\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.5 size 16 }\nstage s { train head epochs 1 }\n").unwrap();
    if !cfg!(feature = "cuda") {
        let output = tlrun(dir.path(), &["r.tl", "--device", "cuda"]);
        assert_eq!(output.status.code(), Some(1));
        assert!(String::from_utf8_lossy(&output.stderr).contains("TL4007"));
    }
    std::fs::write(dir.path().join("a-file"), b"not a folder").unwrap();
    let output = tlrun(dir.path(), &["r.tl", "--out", "a-file/run"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("TL4008"), "{}", String::from_utf8_lossy(&output.stderr));
}

/// Every head layer the language offers really runs: concat pooling doubles the features, and the
/// whole stack maps to one score per class.
#[test]
fn every_head_layer_runs_and_concat_pool_is_max_then_average() {
    let text = format!("{STAGES}head {{ pool concat  dropout 0.5  linear 8  relu  batchnorm  linear classes }}\nstage s {{ train head epochs 1 }}\n");
    let recipe = recipe(&text);
    let device = Device::flex();
    let network = Network::new(&recipe, 5, &device).valid();
    let images = Tensor::<4>::random([3, 3, 16, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    assert_eq!(network.forward(images.clone()).dims(), [3, 5]);
    // The first linear layer sees [max, avg] of the 64 backbone channels: 128 features.
    assert_eq!(network.head.linears[0].weight.dims(), [128, 8]);
    let features = network.backbone.forward(images);
    let pooled: Vec<f32> = Tensor::cat(vec![features.clone().max_dim(3).max_dim(2), features.mean_dim(3).mean_dim(2)], 1)
        .reshape([3, 128])
        .into_data()
        .convert::<f32>()
        .try_into_vec()
        .unwrap();
    let max_first: f32 = pooled[0];
    let avg_first: f32 = pooled[64];
    assert!(max_first >= avg_first, "max pooling comes first, then average");
}

/// `optimizer sgd … wd W` is L2 on the gradient: with plain SGD, one step differs from the step
/// without decay by exactly lr × W × weight.
#[test]
fn sgd_weight_decay_is_applied_exactly() {
    let data = tiny_data();
    let base = format!("{STAGES}stage s {{ train all epochs 1 lr 0.05 optimizer sgd momentum 0");
    let plain_recipe = recipe(&format!("{base} schedule constant }}\n"));
    let initial = initial_network(&plain_recipe, data.classes.len());
    let (before, plain) = one_step(&plain_recipe, &data, &initial);
    let (_, decayed) = one_step(&recipe(&format!("{base} wd 0.1 schedule constant }}\n")), &data, &initial);
    let path = "head.linears.0.weight";
    for ((w, a), b) in before[path].iter().zip(&plain[path]).zip(&decayed[path]) {
        let expected = -0.05 * 0.1 * w;
        assert!(((b - a) - expected).abs() < 1e-6, "decay moved {} instead of {expected}", b - a);
    }
}

/// Custom groups freeze and take rates as a whole: `train from late` trains the `late` group and
/// every group after it, and nothing before it moves.
#[test]
fn custom_groups_and_train_from_freeze_what_they_name() {
    let data = tiny_data();
    let text = format!(
        "{STAGES}groups {{\n  early: conv1 bn1 relu layer1\n  middle: layer2\n  late: layer3\n  new: head\n}}\nstage s {{ train from late  epochs 1  lr 1e-2  batchnorm frozen }}\n"
    );
    let recipe = recipe(&text);
    assert_eq!(recipe.stages[0].trained, vec![false, false, true, true]);
    let (before, after) = train_stage(&recipe, &data);
    for frozen in ["backbone.conv1.", "backbone.bn1.", "backbone.layer1.", "backbone.layer2."] {
        assert_eq!(changed(&before, &after, frozen).0, 0, "{frozen} belongs to a frozen custom group");
    }
    let (moved, total) = changed(&before, &after, "backbone.layer3.");
    assert_eq!(moved, total, "the `late` group trains");
}

/// TL2011 at run time: lint counts two training images, `corrupt skip` leaves one, and a stage
/// that trains BatchNorm stops before its first step, naming the stage, instead of training on
/// the layer's bias.
#[test]
fn a_batch_of_one_left_by_corrupt_skip_stops_the_stage() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/all"), 2, 1);
    let train = dir.path().join("data/train");
    std::fs::create_dir_all(train.join("arrow")).unwrap();
    std::fs::create_dir_all(train.join("checker")).unwrap();
    let first_arrow = std::fs::read_dir(dir.path().join("data/all/arrow")).unwrap().next().unwrap().unwrap().path();
    std::fs::copy(&first_arrow, train.join("arrow/only.png")).unwrap();
    std::fs::write(train.join("checker/bad.png"), b"").unwrap();
    for class in ["circle-in-square", "two-circles", "l-shape"] {
        std::fs::remove_dir_all(dir.path().join("data/all").join(class)).unwrap();
    }
    let recipe = "recipe \"b\"\nbackbone resnet_small from none\ndata { train \"data/train\" valid \"data/all\" size 16 corrupt skip }\nstage s { train all epochs 1 }\n";
    std::fs::write(dir.path().join("b.tl"), recipe).unwrap();
    let lint = tlrun(dir.path(), &["lint", "b.tl"]);
    assert!(!String::from_utf8_lossy(&lint.stdout).contains("TL2011"), "lint counts two images");
    let output = tlrun(dir.path(), &["b.tl", "--out", "run"]);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("TL2011") && stderr.contains("stage `s`") && stderr.contains("batch of one image"), "{stderr}");
}

/// `--threads N` is honoured, and summary.json says how many threads the run computed on.
#[test]
fn threads_are_honoured_and_recorded() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 2, 1);
    std::fs::write(dir.path().join("t.tl"), "recipe \"t\"\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.5 size 16 batch 4 }\nhead { pool avg  linear classes }\nstage s { train head epochs 1 }\n").unwrap();
    let threads_of = |out: &str, extra: &[&str]| {
        let mut args = vec!["t.tl", "--out", out];
        args.extend_from_slice(extra);
        let output = tlrun(dir.path(), &args);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join(out).join("summary.json")).unwrap()).unwrap();
        summary["threads"].as_u64().unwrap()
    };
    assert_eq!(threads_of("one", &["--threads", "1"]), 1);
    assert_eq!(threads_of("three", &["--threads", "3"]), 3);
    assert!(threads_of("default", &[]) >= 1);
}

/// A new head on pretrained weights is drawn from a stream of its own. Drawn after the backbone at
/// the recipe's seed, a transfer with the pretraining's seed, architecture, cut and class count
/// replayed the pretraining's initial classifier, to which the pretrained features are co-adapted
/// (few-shot digits, seed 1: a first loss of 6.1 where independent heads give 1.6–2.5).
#[test]
fn a_new_head_on_pretrained_weights_is_not_the_pretrainings_initial_head() {
    let dir = tempfile::tempdir().unwrap();
    let pretrain = "recipe \"up\"\nseed 7\nbackbone resnet_small from none\ndata { train synthetic \"shapes-target\" 4 per class  valid split 0.25  batch 8 size 16 }\nhead { pool avg  linear classes }\nstage s { train all epochs 1 lr 1e-3 }\nexport \"up.safetensors\"\n";
    let transfer = "recipe \"down\"\nseed 7\nbackbone resnet_small from file \"up.safetensors\"\ndata { train synthetic \"shapes-target\" 4 per class seed 9  valid split 0.25  batch 8 size 16 }\nhead { pool avg  linear classes }\nstage s { train head epochs 1 lr 1e-3 }\n";
    std::fs::write(dir.path().join("up.tl"), pretrain).unwrap();
    std::fs::write(dir.path().join("down.tl"), transfer).unwrap();
    for (recipe, out) in [("up.tl", "up"), ("down.tl", "down")] {
        let output = tlrun(dir.path(), &[recipe, "--out", out]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    }
    let initial_head = |run: &str| {
        let bytes = std::fs::read(dir.path().join(run).join("initial.safetensors")).unwrap();
        let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        file.tensor("fc.weight").unwrap().data().to_vec()
    };
    let (up, down) = (initial_head("up"), initial_head("down"));
    assert_eq!(up.len(), down.len(), "same shape: the collision this guards against needs it");
    assert_ne!(up, down, "the transfer's new head replays the pretraining's initial head");
}

/// `regularise l2sp` runs in a real run: the interpreter anchors the backbone where training
/// starts, and a strong pull (α 10) keeps it closer to its starting weights than no pull does,
/// on the same seed and data (movement.json: each parameter's relative change).
#[test]
fn l2sp_in_a_run_keeps_the_backbone_near_where_it_started() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 12, 1);
    write_dataset(&dir.path().join("data/valid"), 4, 2);
    let text = |regularise: &str| {
        format!("recipe \"l2sp\"\nseed 4\nbackbone resnet_small from none\ndata {{ train \"data/train\" valid \"data/valid\" batch 10 }}\n{regularise}stage all {{ train all epochs 2 lr 1e-2 }}\n")
    };
    let backbone_movement = |out: &str| {
        let movement: BTreeMap<String, f64> = serde_json::from_str(&std::fs::read_to_string(dir.path().join(out).join("movement.json")).unwrap()).unwrap();
        movement.iter().filter(|(name, _)| name.starts_with("backbone.")).map(|(_, moved)| moved).sum::<f64>()
    };
    run(dir.path(), &text(""), "free");
    run(dir.path(), &text("regularise l2sp 10 0\n"), "pulled");
    let (free, pulled) = (backbone_movement("free"), backbone_movement("pulled"));
    assert!(pulled < 0.9 * free, "the pulled backbone moved {pulled}, the free one {free}");
}
