//! The training options a recipe can state, each proved by what burn then does: every image is
//! seen, weight decay spares BatchNorm and biases, accumulation equals a larger batch, the loss
//! smooths and weighs, keep best restores, early stopping stops, the average is an average, TTA
//! mirrors, and lr-find sweeps and writes.

mod common;

use std::collections::BTreeMap;

use burn::prelude::*;
use common::*;
use tlrun::runtime::ema::WeightAverage;
use tlrun::runtime::model::Network;
use tlrun::runtime::param_snapshot::snapshot;
use tlrun::runtime::trainer::{EpochMetrics, NoHooks, Position, Snapshot, StageHooks, Stop, Trainer, TrainingData};

/// Hooks that remember what the trainer reported.
#[derive(Default)]
struct Recorder {
    epochs: Vec<EpochMetrics>,
    /// Global step and images seen at every checkpoint between steps.
    steps: Vec<(usize, usize)>,
    /// The global step after each epoch, and the weights then.
    epoch_ends: Vec<(usize, BTreeMap<String, Vec<f32>>)>,
}

impl StageHooks for Recorder {
    fn after_step(&mut self, position: &Position, _: Snapshot<'_>) -> Result<(), Stop> {
        self.steps.push((position.global_step, position.images_seen));
        Ok(())
    }

    fn after_epoch(&mut self, metrics: &EpochMetrics, next: &Position, snapshot: Snapshot<'_>) -> Result<(), Stop> {
        self.epochs.push(metrics.clone());
        self.epoch_ends.push((next.global_step, tlrun::runtime::param_snapshot::snapshot(snapshot.network)));
        Ok(())
    }
}

fn data_with(train_per_class: usize) -> TrainingData {
    let mut data = tiny_data();
    data.train = synthetic(train_per_class, 1);
    data
}

/// Run the recipe's first stage on `data` from `initial` (or the recipe's seeded network),
/// recording what happened.
fn record_stage_from(
    recipe: &tlrun::check::recipe::Recipe,
    data: &TrainingData,
    initial: &Network,
) -> (Recorder, tlrun::runtime::trainer::StageOutcome) {
    let device = Device::flex().autodiff();
    let network = copy_of(initial, recipe);
    let mut trainer = Trainer::new(recipe, device, data);
    let mut recorder = Recorder::default();
    let outcome = trainer.run_stage(network, 0, &recipe.stages[0], None, &mut recorder).unwrap_or_else(|_| panic!("the stage runs"));
    (recorder, outcome)
}

fn record_stage(recipe: &tlrun::check::recipe::Recipe, data: &TrainingData) -> (Recorder, tlrun::runtime::trainer::StageOutcome) {
    record_stage_from(recipe, data, &initial_network(recipe, data.classes.len()))
}

#[test]
fn the_last_partial_batch_trains_and_a_single_leftover_joins_the_batch_before() {
    // 10 images at batch 8: a batch of 8, then the 2 left over (PyTorch's drop_last=False).
    let stage = format!("{STAGES}stage s {{ train head epochs 1 lr 1e-3 }}\n");
    let (recorder, _) = record_stage(&recipe(&stage), &data_with(2));
    assert_eq!(recorder.steps, vec![(1, 8)], "a checkpoint after the first batch of 8");
    assert_eq!(recorder.epoch_ends[0].0, 2, "two steps: every one of the 10 images trained");
    // 9 images at batch 8: the ninth joins the first batch (BatchNorm cannot train on one image).
    let mut nine = data_with(2);
    nine.train.images.truncate(9);
    nine.train.labels.truncate(9);
    let (recorder, _) = record_stage(&recipe(&stage), &nine);
    assert!(recorder.steps.is_empty());
    assert_eq!(recorder.epoch_ends[0].0, 1, "one step of 9 images");
}

#[test]
fn weight_decay_spares_batchnorm_and_biases_unless_told() {
    let data = tiny_data();
    let base = format!("{STAGES}head {{ pool avg  batchnorm  linear classes }}\nstage s {{ train all epochs 1 lr 0.05 schedule constant optimizer adamw");
    let plain_recipe = recipe(&format!("{base} wd 0 }}\n"));
    let initial = initial_network(&plain_recipe, data.classes.len());
    let (before, plain) = one_step(&plain_recipe, &data, &initial);
    let (_, decayed) = one_step(&recipe(&format!("{base} wd 0.5 }}\n")), &data, &initial);
    let (_, everything) = one_step(&recipe(&format!("{base} wd 0.5 wd_bn_bias }}\n")), &data, &initial);
    for path in ["backbone.bn1.gamma", "backbone.layer1.0.bn2.beta", "head.norms.0.gamma", "head.norms.0.beta", "head.linears.0.bias"] {
        assert_ne!(before[path], plain[path], "{path} trains");
        assert_eq!(plain[path], decayed[path], "{path} takes no weight decay by default (fastai's wd_bn_bias=False)");
    }
    // Betas start at zero, where decay does nothing; gammas start at one and biases are drawn.
    for path in ["backbone.bn1.gamma", "backbone.layer1.0.bn2.gamma", "head.norms.0.gamma", "head.linears.0.bias"] {
        assert_ne!(plain[path], everything[path], "{path} decays under wd_bn_bias");
    }
    for path in ["backbone.conv1.weight", "head.linears.0.weight"] {
        // AdamW's decoupled decay: exactly w × (1 − lr × wd) on top of the same Adam update.
        for ((w, a), b) in before[path].iter().zip(&plain[path]).zip(&decayed[path]) {
            let expected = a - w * 0.05 * 0.5;
            assert!((b - expected).abs() < 1e-6, "{path}: {b} instead of {expected}");
        }
    }
}

/// With BatchNorm frozen and no dropout, `accumulate 2` at batch 8 makes the same step as one
/// batch of 16.
#[test]
fn accumulating_two_batches_of_8_is_one_batch_of_16() {
    let data = data_with(4); // 20 images: 16 + 4 at batch 16; 8 + 8 + 4 at batch 8
    let stage = "stage s { train head epochs 1 lr 0.1 optimizer sgd momentum 0 schedule constant batchnorm frozen";
    let large = recipe(&format!("recipe \"t\"\nseed 5\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 16 size 16 }}\n{stage} }}\n"));
    let small = recipe(&format!("recipe \"t\"\nseed 5\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 }}\n{stage} accumulate 2 }}\n"));
    let initial = initial_network(&large, data.classes.len());
    let (large_run, _) = record_stage_from(&large, &data, &initial);
    let (small_run, _) = record_stage_from(&small, &data, &initial);
    assert_eq!(large_run.steps, vec![(1, 16)]);
    assert_eq!(small_run.steps, vec![(1, 16)], "one optimizer step for the first two batches of 8");
    assert_eq!(small_run.epoch_ends[0].0, 2);
    let (large_after, small_after) = (&large_run.epoch_ends[0].1, &small_run.epoch_ends[0].1);
    for path in ["head.linears.0.weight", "head.linears.0.bias"] {
        for (a, b) in large_after[path].iter().zip(&small_after[path]) {
            assert!((a - b).abs() < 1e-5, "{path}: {a} vs {b}");
        }
    }
}

/// `loss cross_entropy smoothing ε` and `weights balanced` reach the trainer from a recipe: on the
/// first epoch of one initial network at a rate too small to move it (so each batch's loss is the
/// initial network's), the recorded training loss is the hand-computed formula's (below) over the
/// same logits: (1 − ε)·NLL + ε·mean(−log p), weighted Σwᵢlᵢ / Σwᵢ. An ignored option records
/// plain cross-entropy.
#[test]
fn smoothing_and_class_weights_in_a_recipe_change_the_loss_a_stage_trains_on() {
    // Imbalanced: 4, 4, 4, 4, 1 images, one batch of 17 (batch 32), so the epoch's loss is one batch's.
    let mut data = data_with(4);
    let keep: Vec<usize> = (0..data.train.labels.len()).filter(|index| data.train.labels[*index] != 4 || *index % 4 == 0).collect();
    data.train = tlrun::runtime::trainer::Split {
        images: keep.iter().map(|index| data.train.images[*index].clone()).collect(),
        labels: keep.iter().map(|index| data.train.labels[*index]).collect(),
    };
    let text = |loss: &str| format!(
        "recipe \"t\"\nseed 5\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 32 size 16 }}\nhead {{ pool avg  linear classes }}\n{loss}\nstage s {{ train head epochs 1 lr 1e-12 schedule constant }}\n"
    );
    let plain = recipe(&text(""));
    let initial = initial_network(&plain, data.classes.len());
    let first_loss = |loss: &str| {
        let recipe = recipe(&text(loss));
        record_stage_from(&recipe, &data, &initial).0.epochs[0].train_loss
    };
    // The same batch's log-probabilities, from the initial network as the stage prepares images.
    let device = Device::flex();
    let set = tlrun::data::SizedSet::build(&data.train.images, &data.train.labels, 16, &plain.data.mean, &plain.data.std);
    let images = Tensor::<4>::from_data(TensorData::new(set.images.clone(), [data.train.labels.len(), 3, 16, 16]), &device);
    let logits = initial.valid().forward(images);
    let log_p: Vec<f32> = burn::tensor::activation::log_softmax(logits, 1).into_data().try_to_vec().unwrap();
    let classes = data.classes.len();
    let counts: Vec<f64> = (0..classes).map(|class| data.train.labels.iter().filter(|label| **label == class).count() as f64).collect();
    let total = data.train.labels.len() as f64;
    let expected = |epsilon: f64, balanced: bool| {
        let weight = |class: usize| if balanced { total / (classes as f64 * counts[class]) } else { 1.0 };
        let (mut sum, mut weights) = (0.0, 0.0);
        for (row, &label) in data.train.labels.iter().enumerate() {
            let p = |class: usize| f64::from(log_p[row * classes + class]);
            let uniform = -(0..classes).map(|class| weight(class) * p(class)).sum::<f64>() / classes as f64;
            sum += (1.0 - epsilon) * -p(label) * weight(label) + epsilon * uniform;
            weights += weight(label);
        }
        sum / weights
    };
    let cases = [("", 0.0, false), ("loss cross_entropy smoothing 0.2", 0.2, false), ("loss cross_entropy weights balanced", 0.0, true), ("loss cross_entropy smoothing 0.2 weights balanced", 0.2, true)];
    let mut recorded = Vec::new();
    for (loss, epsilon, balanced) in cases {
        let got = first_loss(loss);
        let want = expected(epsilon, balanced);
        assert!((got - want).abs() < 1e-3 * want.abs().max(1.0), "`{loss}`: the stage trained on {got}, the formula gives {want}");
        recorded.push(got);
    }
    assert!(recorded.windows(2).all(|pair| (pair[0] - pair[1]).abs() > 1e-4), "each option changes the loss: {recorded:?}");
}

#[test]
fn label_smoothing_and_balanced_weights_compute_what_pytorch_does() {
    let device = Device::flex();
    let logits = Tensor::<2>::from_data(TensorData::new(vec![2.0f32, 0.5, -1.0, 0.1, 0.2, 0.3], [2, 3]), &device);
    let targets = Tensor::<1, Int>::from_data(TensorData::new(vec![0i64, 2], [2]), &device);
    let log_softmax = |row: [f64; 3]| {
        let total = row.iter().map(|v| v.exp()).sum::<f64>().ln();
        row.map(|v| v - total)
    };
    let rows = [log_softmax([2.0, 0.5, -1.0]), log_softmax([0.1, 0.2, 0.3])];
    // PyTorch: CrossEntropyLoss(label_smoothing=0.1): (1-ε)·NLL + ε·mean over classes of −log p.
    let smoothed = |row: [f64; 3], target: usize, weights: [f64; 3]| {
        0.9 * -row[target] * weights[target] + 0.1 * -(0..3).map(|c| row[c] * weights[c]).sum::<f64>() / 3.0
    };
    let loss = tlrun::check::recipe::Loss { smoothing: 0.1, balanced_weights: false };
    let value = tlrun::runtime::loss::training_loss(&loss, &[0, 2], 3, &device).forward(logits.clone(), targets.clone());
    let expected = (smoothed(rows[0], 0, [1.0; 3]) + smoothed(rows[1], 2, [1.0; 3])) / 2.0;
    assert!((f64::from(value.into_scalar::<f32>()) - expected).abs() < 1e-5);
    // Weighted: Σ weighted losses / Σ weights of the targets, as PyTorch's mean reduction.
    let loss = tlrun::check::recipe::Loss { smoothing: 0.1, balanced_weights: true };
    let train_labels = [0, 0, 0, 1, 2, 2];
    let weights = tlrun::runtime::loss::balanced_weights(&train_labels, 3);
    let weights = [f64::from(weights[0]), f64::from(weights[1]), f64::from(weights[2])];
    let value = tlrun::runtime::loss::training_loss(&loss, &train_labels, 3, &device).forward(logits, targets);
    let expected = (smoothed(rows[0], 0, weights) + smoothed(rows[1], 2, weights)) / (weights[0] + weights[2]);
    assert!((f64::from(value.into_scalar::<f32>()) - expected).abs() < 1e-5, "{expected}");
}

#[test]
fn keep_best_ends_the_stage_with_the_best_epochs_weights() {
    let stage = format!("{STAGES}stage s {{ train all epochs 4 lr 0.3 optimizer sgd momentum 0.9 schedule constant keep best valid_loss }}\n");
    let (recorder, outcome) = record_stage(&recipe(&stage), &data_with(4));
    let losses: Vec<f64> = recorder.epochs.iter().map(|epoch| epoch.valid_loss).collect();
    let best = (0..losses.len()).min_by(|a, b| losses[*a].total_cmp(&losses[*b])).unwrap();
    assert_eq!(outcome.restored_epoch, Some(best as u32 + 1), "valid losses {losses:?}");
    let restored = snapshot(&outcome.network);
    assert_eq!(restored, recorder.epoch_ends[best].1, "the weights are the best epoch's, bit for bit");
    if best + 1 < losses.len() {
        assert_ne!(restored, recorder.epoch_ends.last().unwrap().1, "not the last epoch's");
    }
}

#[test]
fn early_stopping_ends_the_stage_after_its_patience() {
    // min_delta 100: nothing after the first epoch counts as an improvement.
    let stage = format!("{STAGES}stage s {{ train head epochs 6 lr 1e-3 stop after 2 epochs without improvement min_delta 100 }}\n");
    let (recorder, outcome) = record_stage(&recipe(&stage), &data_with(2));
    let stopped: Vec<bool> = recorder.epochs.iter().map(|epoch| epoch.stopped_early).collect();
    assert_eq!(stopped, vec![false, false, true], "epochs 2 and 3 did not improve: stop after 3 of 6");
    assert_eq!(outcome.stopped_after, Some(3));
    assert_eq!(outcome.restored_epoch, None, "without keep best the last weights stay");
}

#[test]
fn the_weight_average_blends_with_the_warmed_up_decay() {
    let text = format!("{STAGES}stage s {{ train head epochs 1 }}\n");
    let recipe = recipe(&text);
    let first = initial_network(&recipe, 5).valid();
    let reseeded = tlrun::check::recipe::Recipe { seed: recipe.seed + 1, ..recipe.clone() };
    let second = initial_network(&reseeded, 5).valid();
    assert_ne!(snapshot(&first), snapshot(&second), "two draws of the generator");
    let mut average = WeightAverage::new(&first, 0.999);
    // Warm-up: (1 + n) / (10 + n) until it passes the decay (n ≥ 8991 for 0.999).
    assert!((average.decay_at(0) - 0.1).abs() < 1e-12);
    assert!((average.decay_at(90) - 91.0 / 100.0).abs() < 1e-12);
    assert!((average.decay_at(100_000) - 0.999).abs() < 1e-12);
    average.update(&second);
    let (a, b, blended) = (snapshot(&first), snapshot(&second), snapshot(average.network()));
    for path in ["backbone.conv1.weight", "backbone.bn1.running_var", "head.linears.0.weight"] {
        for ((a, b), m) in a[path].iter().zip(&b[path]).zip(&blended[path]) {
            let expected = 0.1 * a + 0.9 * b;
            assert!((m - expected).abs() < 1e-6, "{path}: {m} vs {expected}");
        }
    }
}

/// `tta flip` in a recipe, through `tlrun run`: training is the same with and without it (every
/// epoch's figures agree), and only the final evaluation changes, to one that cannot tell a valid
/// folder from its mirror image: the same loss on both, where without TTA they differ.
#[test]
fn tta_in_a_recipe_makes_the_final_evaluation_mirror_invariant() {
    let dir = tempfile::tempdir().unwrap();
    let (classes, images, labels) = tlrun::data::generate("shapes-target", 4, 16, 1).unwrap();
    tlrun::data::write_image_folder(&dir.path().join("train"), &classes, &images, &labels).unwrap();
    let (_, valid, valid_labels) = tlrun::data::generate("shapes-target", 2, 16, 2).unwrap();
    let mirrored: Vec<_> = valid.iter().map(mirrored).collect();
    tlrun::data::write_image_folder(&dir.path().join("valid"), &classes, &valid, &valid_labels).unwrap();
    tlrun::data::write_image_folder(&dir.path().join("mirrored"), &classes, &mirrored, &valid_labels).unwrap();
    let run = |name: &str, valid: &str, tta: bool| {
        let recipe = format!(
            "recipe \"{name}\"\nseed 3\nbackbone resnet_small from none\ndata {{ train \"train\" valid \"{valid}\" batch 8 size 16 }}\nhead {{ pool avg  linear classes }}\n{}stage s {{ train all epochs 2 lr 1e-2 }}\n",
            if tta { "tta flip\n" } else { "" }
        );
        std::fs::write(dir.path().join(format!("{name}.tl")), recipe).unwrap();
        let output = tlrun(dir.path(), &[&format!("{name}.tl"), "--out", name]);
        assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
        let read = |file: &str| std::fs::read_to_string(dir.path().join(name).join(file)).unwrap();
        let summary: serde_json::Value = serde_json::from_str(&read("summary.json")).unwrap();
        let epochs: Vec<(f64, f64)> = read("metrics.jsonl")
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap())
            .map(|m| (m["train_loss"].as_f64().unwrap(), m["valid_loss"].as_f64().unwrap()))
            .collect();
        (summary["final_valid_loss"].as_f64().unwrap(), epochs)
    };
    let (plain, plain_epochs) = run("plain", "valid", false);
    let (plain_mirrored, _) = run("plain-mirrored", "mirrored", false);
    let (tta, tta_epochs) = run("tta", "valid", true);
    let (tta_mirrored, _) = run("tta-mirrored", "mirrored", true);
    for (a, b) in plain_epochs.iter().zip(&tta_epochs) {
        assert!((a.0 - b.0).abs() < 1e-9 && (a.1 - b.1).abs() < 1e-9, "TTA leaves training alone: {plain_epochs:?} vs {tta_epochs:?}");
    }
    assert!((plain - plain_mirrored).abs() > 1e-6, "the trained network is not mirror-invariant: {plain} vs {plain_mirrored}");
    assert!((tta - tta_mirrored).abs() < 1e-5, "under TTA a folder and its mirror score alike: {tta} vs {tta_mirrored}");
    assert!((tta - plain).abs() > 1e-6, "TTA changes the final evaluation");
}

#[test]
fn tta_averages_each_image_with_its_mirror() {
    let text = format!("{STAGES}stage s {{ train head epochs 1 }}\n");
    let recipe = recipe(&text);
    let mut data = tiny_data();
    let mirrored: Vec<_> = data.valid.images.iter().map(mirrored).collect();
    let device = Device::flex().autodiff();
    let network = initial_network(&recipe, 5);
    let evaluate = |data: &TrainingData, tta: bool| Trainer::new(&recipe, device.clone(), data).evaluate(&network, 16, tta);
    let plain = evaluate(&data, false);
    let with_tta = evaluate(&data, true);
    data.valid.images = mirrored;
    let mirrored_tta = evaluate(&data, true);
    let mirrored_plain = evaluate(&data, false);
    assert!((with_tta.loss - mirrored_tta.loss).abs() < 1e-5, "TTA sees both orientations: {} vs {}", with_tta.loss, mirrored_tta.loss);
    assert!((plain.loss - mirrored_plain.loss).abs() > 1e-6, "the network itself is not mirror-invariant");
    assert!((plain.loss - with_tta.loss).abs() > 1e-6, "TTA changes the predictions");
    let _ = NoHooks;
}

#[test]
fn lr_find_sweeps_suggests_plots_and_writes_a_rate_that_lints() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 8, 1);
    let text = "recipe \"lr\"\nseed 3\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.2 batch 8 size 16 }\nstage warmup { train head epochs 1 lr 1e-3 }\nstage all { train all epochs 1 }\n";
    std::fs::write(dir.path().join("lr.tl"), text).unwrap();
    let output = tlrun(dir.path(), &["lr-find", "lr.tl", "--stage", "all", "--steps", "40", "--write", "valley"]);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    assert!(stdout.contains("valley") && stdout.contains("steep"), "{stdout}");
    assert!(dir.path().join("lr_find.png").is_file());
    let written = std::fs::read_to_string(dir.path().join("lr.tl")).unwrap();
    assert!(written.starts_with(&text[..text.find("stage all").unwrap()]), "only the swept stage changes");
    assert!(written.contains("stage all { lr ") && stdout.contains("+ stage all { lr "), "{written}\n{stdout}");
    let lint = tlrun(dir.path(), &["lint", "lr.tl"]);
    assert_eq!(lint.status.code(), Some(0), "{}", String::from_utf8_lossy(&lint.stdout));
}

#[test]
fn a_grey_backbone_takes_one_channel_and_trains() {
    let text = "recipe \"grey\"\nseed 5\nbackbone resnet_small from none { mean 0.5 std 0.25 channels 1 }\ndata { train \"unused\" batch 8 size 16 channels 1 }\nstage s { train all epochs 1 lr 1e-3 }\n";
    let recipe = recipe(text);
    assert_eq!(recipe.input_channels(), 1);
    let device = Device::flex().autodiff();
    let network = Network::new(&recipe, 5, &device);
    assert_eq!(network.backbone.conv1.as_ref().unwrap().weight.dims(), [16, 1, 3, 3]);
    let mut data = tiny_data();
    for image in data.train.images.iter_mut().chain(data.valid.images.iter_mut()) {
        image.make_grey();
    }
    let mut trainer = Trainer::new(&recipe, device, &data);
    let outcome = trainer.run_stage(network, 0, &recipe.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("a grey network trains"));
    let evaluation = trainer.evaluate(&outcome.network, 16, false);
    assert!(evaluation.loss.is_finite());
}

/// `channels 1 adapt` (timm's adapt_input_conv): the summed filters see a grey image exactly as the
/// colour network saw it replicated in three channels, when the three channels share statistics.
#[test]
fn adapted_grey_input_computes_what_the_colour_network_computed() {
    let dir = tempfile::tempdir().unwrap();
    let colour_text = "recipe \"c\"\nseed 5\nbackbone resnet_small from none { mean 0.4 0.4 0.4 std 0.2 0.2 0.2 }\ndata { train \"x\" size 16 }\nstage s { train head }\n";
    let colour = recipe(colour_text);
    let device = Device::flex();
    device.seed(9);
    let colour_network = Network::new(&colour, 5, &device);
    let weights = dir.path().join("colour.safetensors");
    tlrun::runtime::weights::save(&colour_network, &weights).unwrap();
    let grey_text = format!(
        "recipe \"g\"\nseed 5\nbackbone resnet_small from file \"{}\" {{ mean 0.4 0.4 0.4 std 0.2 0.2 0.2 }}\ndata {{ train \"x\" size 16 channels 1 adapt }}\nstage s {{ train head }}\n",
        weights.display()
    );
    let grey = recipe(&grey_text);
    assert_eq!((grey.input_channels(), grey.input_normalisation().0.len()), (1, 1));
    let (adapted, _) = tlrun::runtime::starting_network::starting_network(&grey, 5, &device, Some(&weights)).unwrap();
    assert_eq!(adapted.backbone.conv1.as_ref().unwrap().weight.dims(), [16, 1, 3, 3]);
    let grey_image = Tensor::<4>::random([2, 1, 16, 16], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let replicated = Tensor::cat(vec![grey_image.clone(), grey_image.clone(), grey_image.clone()], 1);
    let features = |network: &Network, images| network.valid().backbone.forward(images).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    let (from_grey, from_colour) = (features(&adapted, grey_image), features(&colour_network, replicated));
    for (a, b) in from_grey.iter().zip(&from_colour) {
        assert!((a - b).abs() < 1e-4 * (1.0 + b.abs()), "{a} vs {b}");
    }
}

/// `channels 1 adapt` with a stage that trains the first convolution: the summed filters are a
/// trainable leaf (burn once panicked "Can't convert a non leaf tensor into a tracked tensor"),
/// and they move.
#[test]
fn an_adapted_first_convolution_trains_when_a_stage_trains_it() {
    let dir = tempfile::tempdir().unwrap();
    let colour = recipe("recipe \"c\"\nseed 5\nbackbone resnet_small from none\ndata { train \"x\" size 16 }\nstage s { train head }\n");
    let weights = dir.path().join("colour.safetensors");
    tlrun::runtime::weights::save(&Network::new(&colour, 5, &Device::flex()), &weights).unwrap();
    let grey = recipe(&format!(
        "recipe \"g\"\nseed 5\nbackbone resnet_small from file \"{}\"\ndata {{ train \"x\" batch 8 size 16 channels 1 adapt }}\nstage s {{ train all epochs 1 lr 1e-2 }}\n",
        weights.display()
    ));
    let device = Device::flex().autodiff();
    let (adapted, _) = tlrun::runtime::starting_network::starting_network(&grey, 5, &device, Some(&weights)).unwrap();
    let before = snapshot(&adapted);
    let data = data_with(8);
    let mut trainer = Trainer::new(&grey, device, &data);
    let trained = trainer.run_stage(adapted, 0, &grey.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("the stage runs")).network;
    let after = snapshot(&trained);
    let key = "backbone.conv1.weight";
    assert_eq!(before[key].len(), 16 * 9, "one input channel");
    assert_ne!(before[key], after[key], "the adapted filters trained");
}

/// `schedule onecycle pct … div … final_div …` reaches the trainer: the recorded rates start at
/// lr / div, peak where pct says, and end near lr / final_div.
#[test]
fn onecycle_parameters_shape_the_rates_a_stage_uses() {
    let data = data_with(8); // 40 images at batch 8: 5 steps an epoch, 20 in 4 epochs
    let stage = format!("{STAGES}stage s {{ train head epochs 4 lr 0.01 schedule onecycle pct 0.5 div 10 final_div 100 }}\n");
    let recipe = recipe(&stage);
    let device = Device::flex().autodiff();
    let mut trainer = Trainer::new(&recipe, device, &data);
    trainer.run_stage(initial_network(&recipe, data.classes.len()), 0, &recipe.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("runs"));
    let head: Vec<f64> = trainer.step_rates.iter().map(|step| step.rates["head"]).collect();
    assert_eq!(head.len(), 20);
    assert!((head[0] - 0.001).abs() < 1e-12, "starts at lr / div: {head:?}");
    let peak = (0..head.len()).max_by(|a, b| head[*a].total_cmp(&head[*b])).unwrap();
    assert_eq!(peak, 10, "peaks at pct 0.5 of 20 steps: {head:?}");
    assert!(head[19] < 0.001 && head[19] > 0.0001, "anneals toward lr / final_div: {head:?}");
}

/// `resize_method` reaches the images a stage trains and evaluates on: on non-square images the
/// three methods, from one initial network, give three different valid losses and three
/// different trained heads (an ignored option would give one). Square images are the same under
/// all three, and give one result.
#[test]
fn every_resize_method_changes_what_a_stage_sees_on_non_square_images() {
    let widen = |data: &mut TrainingData| {
        for image in data.train.images.iter_mut().chain(data.valid.images.iter_mut()) {
            // 16x16 → 24x16: the image, then its first 8 columns again.
            let (width, height) = (image.width as usize, image.height as usize);
            let mut pixels = Vec::with_capacity(24 * height * 3);
            for row in 0..height {
                for column in 0..24 {
                    let source = (row * width + column % width) * 3;
                    pixels.extend_from_slice(&image.pixels[source..source + 3]);
                }
            }
            *image = tlrun::data::DecodedImage { width: 24, height: height as u32, pixels };
        }
    };
    let text = |method: &str| format!(
        "recipe \"t\"\nseed 5\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 resize_method {method} }}\nhead {{ pool avg  linear classes }}\nstage s {{ train head epochs 1 lr 1e-2 }}\n"
    );
    let square = tiny_data();
    let mut wide = tiny_data();
    widen(&mut wide);
    let initial = initial_network(&recipe(&text("crop")), square.classes.len());
    let outcome = |method: &str, data: &TrainingData| {
        let recipe = recipe(&text(method));
        let (recorder, trained) = record_stage_from(&recipe, data, &initial);
        (recorder.epochs[0].valid_loss, snapshot(&trained.network))
    };
    let on_wide: Vec<(f64, _)> = ["crop", "squash", "pad"].iter().map(|method| outcome(method, &wide)).collect();
    for (i, j) in [(0, 1), (0, 2), (1, 2)] {
        assert!((on_wide[i].0 - on_wide[j].0).abs() > 1e-6, "methods {i} and {j} evaluate the same pixels: {} vs {}", on_wide[i].0, on_wide[j].0);
        assert_ne!(on_wide[i].1, on_wide[j].1, "methods {i} and {j} train on the same pixels");
    }
    let on_square: Vec<(f64, _)> = ["crop", "squash", "pad"].iter().map(|method| outcome(method, &square)).collect();
    assert!(on_square.windows(2).all(|pair| pair[0].0 == pair[1].0 && pair[0].1 == pair[1].1), "square images are one image under every method");
}

/// `schedule onecycle moms M1 M2 M3` moves AdamW's β₁: two stages that differ only in `moms`, from
/// one network, use the same rates at every step and end with different weights; constant
/// `moms 0.9 0.9 0.9` gives the weights of `betas 0.9 …` without one-cycle momentum.
#[test]
fn onecycle_moms_move_adamws_beta1() {
    let data = data_with(4); // 20 images at batch 8: 3 steps an epoch
    let text = |moms: &str| format!("{STAGES}head {{ pool avg  linear classes }}\nstage s {{ train all epochs 2 lr 1e-2 schedule onecycle moms {moms} }}\n");
    let (cycling, flat) = (recipe(&text("0.95 0.85 0.95")), recipe(&text("0.9 0.9 0.9")));
    assert_eq!(cycling.stages[0].onecycle.moms, (0.95, 0.85, 0.95));
    let initial = initial_network(&cycling, data.classes.len());
    let run = |recipe: &tlrun::check::recipe::Recipe| {
        let device = Device::flex().autodiff();
        let mut trainer = Trainer::new(recipe, device, &data);
        let outcome = trainer.run_stage(copy_of(&initial, recipe), 0, &recipe.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("the stage runs"));
        (trainer.step_rates.clone(), snapshot(&outcome.network))
    };
    let (cycling_rates, cycling_weights) = run(&cycling);
    let (flat_rates, flat_weights) = run(&flat);
    assert_eq!(cycling_rates, flat_rates, "moms leave the learning rates alone");
    assert_ne!(cycling_weights, flat_weights, "β₁ cycles 0.95 → 0.85 → 0.95 in one, stays 0.9 in the other");
}

/// `ema D` runs in a stage: one update per optimizer step, and what is evaluated is the average,
/// not the last weights.
#[test]
fn a_stage_with_ema_evaluates_the_average() {
    let data = data_with(2); // 10 images at batch 8: 2 steps
    let recipe = recipe(&format!("{STAGES}ema 0.9\nstage s {{ train all epochs 2 lr 1e-2 }}\n"));
    assert_eq!(recipe.ema, Some(0.9));
    let device = Device::flex().autodiff();
    let mut trainer = Trainer::new(&recipe, device, &data);
    let outcome = trainer.run_stage(initial_network(&recipe, data.classes.len()), 0, &recipe.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("runs"));
    assert_eq!(trainer.average.as_ref().map(|average| average.updates), Some(4));
    let evaluated = snapshot(&trainer.evaluated(&outcome.network));
    assert_ne!(evaluated, snapshot(&outcome.network), "the average, not the last weights");
}

/// `valid every 2 epochs` evaluates every second epoch and each stage's last; the others have no
/// valid figures (null in metrics.jsonl) and the report still draws. `valid last` evaluates only
/// the run's last epoch.
#[test]
fn valid_every_skips_the_evaluations_it_says() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = |schedule: &str| {
        format!(
            "recipe \"sparse\"\nseed 3\nbackbone resnet_small from none\n\
             data {{ train synthetic \"shapes-target\" 6 per class seed 3  valid split 0.25  batch 10 size 16  {schedule} }}\n\
             stage a {{ train all epochs 3 lr 1e-3 }}\nstage b {{ train all epochs 1 lr 1e-4 }}\n"
        )
    };
    let evaluated = |folder: &str| -> Vec<bool> {
        std::fs::read_to_string(dir.path().join(folder).join("metrics.jsonl"))
            .unwrap()
            .lines()
            .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["valid_accuracy"].is_number())
            .collect()
    };
    for (schedule, folder, expected) in [
        ("valid every 2 epochs", "every2", vec![false, true, true, true]),
        ("valid every stage", "stage", vec![false, false, true, true]),
        ("valid last", "last", vec![false, false, false, true]),
    ] {
        std::fs::write(dir.path().join("sparse.tl"), recipe(schedule)).unwrap();
        let run = tlrun(dir.path(), &["run", "sparse.tl", "--out", folder, "--force"]);
        assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
        assert_eq!(evaluated(folder), expected, "{schedule}");
        assert!(dir.path().join(folder).join("report.html").is_file() && dir.path().join(folder).join("curves.png").is_file());
        let summary: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(dir.path().join(folder).join("summary.json")).unwrap()).unwrap();
        assert!(summary["final_valid_accuracy"].is_number(), "the final evaluation always runs");
    }
}

/// `augment rotate zoom lighting warp` changes the training batches and never the evaluation: one
/// network evaluates to the same bits under a recipe with them and one without, while the same
/// training batch, from the same generator, comes out different.
#[test]
fn augmentation_changes_training_batches_and_never_the_evaluation() {
    let text = |augment: &str| {
        format!("recipe \"a\"\nseed 3\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 augment {augment} }}\nstage s {{ train all epochs 1 lr 1e-3 }}\n")
    };
    let (plain, heavy) = (recipe(&text("flip")), recipe(&text("flip rotate 30 zoom 1.5 lighting 0.5 warp 0.3")));
    assert_eq!(heavy.data.augment, tlrun::check::recipe::ImageAugment { rotate: 30.0, zoom: 1.5, lighting: 0.5, warp: 0.3, mixup: 0.0, cutmix: 0.0 });
    let data = tiny_data();
    let device = Device::flex().autodiff();
    let network = initial_network(&plain, data.classes.len());
    let (mut plain_trainer, mut heavy_trainer) = (Trainer::new(&plain, device.clone(), &data), Trainer::new(&heavy, device, &data));
    let (a, b) = (plain_trainer.evaluate(&network, 16, false), heavy_trainer.evaluate(&network, 16, false));
    assert_eq!((a.loss.to_bits(), a.accuracy.to_bits(), &a.confusion), (b.loss.to_bits(), b.accuracy.to_bits(), &b.confusion));
    let indices: Vec<usize> = (0..data.train.labels.len().min(6)).collect();
    let batch = |trainer: &mut Trainer| trainer.training_batch(16, &indices, &mut tlrun::data::SplitMix64::new(1)).images.into_data().try_to_vec::<f32>().unwrap();
    assert_ne!(batch(&mut plain_trainer), batch(&mut heavy_trainer), "the training batch is augmented");
    assert_eq!(batch(&mut heavy_trainer), batch(&mut heavy_trainer), "the same generator gives the same batch");
}

/// `augment mixup`: a training batch is mixed with its mirror, and the loss a step trains on is
/// λ·CE(labels) + (1 − λ)·CE(partners' labels), checked against cross-entropy computed here from
/// the logits; `cutmix` gives its batches the same loss form, and both together mix every batch.
#[test]
fn mixup_trains_on_the_lambda_weighted_loss_of_both_labels() {
    let text = |augment: &str| format!("recipe \"m\"\nseed 3\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 augment {augment} }}\nstage s {{ train all epochs 1 lr 1e-3 }}\n");
    let mixup = recipe(&text("mixup"));
    assert_eq!((mixup.data.augment.mixup, mixup.data.augment.cutmix), (0.4, 0.0), "fastai's α when left out");
    let data = tiny_data();
    let device = Device::flex().autodiff();
    let network = initial_network(&mixup, data.classes.len());
    let mut trainer = Trainer::new(&mixup, device, &data);
    let indices: Vec<usize> = (0..data.train.labels.len().min(6)).collect();
    let batch = trainer.training_batch(16, &indices, &mut tlrun::data::SplitMix64::new(2));
    let (partners, lambda) = batch.mixed.clone().expect("a mixed batch");
    let labels: Vec<i64> = batch.labels.clone().into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    let partner_labels: Vec<i64> = partners.into_data().convert::<i64>().try_to_vec::<i64>().unwrap();
    let expected_partners: Vec<i64> = labels.iter().rev().copied().collect();
    assert_eq!(partner_labels, expected_partners, "each image's partner is its mirror in the batch");
    let logits: Vec<f32> = network.forward(batch.images.clone()).into_data().try_to_vec::<f32>().unwrap();
    let classes = data.classes.len();
    let cross_entropy = |targets: &[i64]| {
        targets.iter().enumerate().map(|(row, &target)| {
            let row_logits = &logits[row * classes..(row + 1) * classes];
            let top = row_logits.iter().fold(f64::MIN, |top, &v| top.max(f64::from(v)));
            let log_sum = row_logits.iter().map(|&v| (f64::from(v) - top).exp()).sum::<f64>().ln() + top;
            log_sum - f64::from(row_logits[target as usize])
        }).sum::<f64>() / targets.len() as f64
    };
    let expected = lambda * cross_entropy(&labels) + (1.0 - lambda) * cross_entropy(&partner_labels);
    let (_, loss) = trainer.gradients(&network, batch, 1.0).unwrap_or_else(|_| panic!("finite"));
    assert!((loss - expected).abs() < 1e-4, "{loss} vs λ-weighted {expected} (λ {lambda})");
    for augment in ["cutmix", "mixup cutmix 0.5"] {
        let both = recipe(&text(augment));
        let mut trainer = Trainer::new(&both, Device::flex().autodiff(), &data);
        assert!(trainer.training_batch(16, &indices, &mut tlrun::data::SplitMix64::new(5)).mixed.is_some(), "{augment}");
    }
}

/// `regularise l2sp α β` (Li et al. 2018) against a hand-computed gradient: on the same batch, the
/// gradient with the term minus the gradient without is α·(w − w₀) on a backbone weight (w₀ the
/// anchor, here another network's weights so that the difference is not zero) and β·w on the
/// head's; the loss reported is the data's alone.
#[test]
fn l2sp_adds_alpha_times_the_distance_to_the_start_and_beta_times_the_weights() {
    let text = |regularise: &str| format!("recipe \"l\"\nseed 3\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 }}\n{regularise}stage s {{ train all epochs 1 lr 1e-3 }}\n");
    let (plain, l2sp) = (recipe(&text("")), recipe(&text("regularise l2sp 0.5 0.25\n")));
    assert_eq!(l2sp.l2sp, Some(tlrun::check::recipe::L2Sp { alpha: 0.5, beta: 0.25 }));
    let data = tiny_data();
    let device = Device::flex().autodiff();
    let network = initial_network(&plain, data.classes.len());
    let other = {
        device.seed(99);
        Network::new(&plain, data.classes.len(), &device)
    };
    let (mut without, mut with) = (Trainer::new(&plain, device.clone(), &data), Trainer::new(&l2sp, device, &data));
    with.anchor = Some(tlrun::runtime::l2sp::Anchor::of(&other));
    let indices: Vec<usize> = (0..data.train.labels.len().min(6)).collect();
    let batch = |trainer: &mut Trainer| trainer.training_batch(16, &indices, &mut tlrun::data::SplitMix64::new(1));
    let (plain_batch, l2sp_batch) = (batch(&mut without), batch(&mut with));
    let (plain_grads, plain_loss) = without.gradients(&network, plain_batch, 1.0).unwrap_or_else(|_| panic!("finite"));
    let (l2sp_grads, l2sp_loss) = with.gradients(&network, l2sp_batch, 1.0).unwrap_or_else(|_| panic!("finite"));
    assert_eq!(plain_loss.to_bits(), l2sp_loss.to_bits(), "the data's loss is reported");
    let values = |tensor: Tensor<4>| tensor.into_data().try_to_vec::<f32>().unwrap();
    let conv = &network.backbone.conv1.as_ref().unwrap().weight;
    let (w, w0) = (values(conv.val()), values(other.backbone.conv1.as_ref().unwrap().weight.val()));
    let difference: Vec<f32> = values(l2sp_grads.get::<4>(conv.id).unwrap()).iter().zip(values(plain_grads.get::<4>(conv.id).unwrap())).map(|(a, b)| a - b).collect();
    for (index, ((d, w), w0)) in difference.iter().zip(&w).zip(&w0).enumerate() {
        assert!((d - 0.5 * (w - w0)).abs() <= 1e-5, "conv1 weight [{index}]: {d} against α(w − w₀) = {}", 0.5 * (w - w0));
    }
    let head = &network.head.linears[0].weight;
    let flat = |tensor: Tensor<2>| tensor.into_data().try_to_vec::<f32>().unwrap();
    let head_difference: Vec<f32> = flat(l2sp_grads.get::<2>(head.id).unwrap()).iter().zip(flat(plain_grads.get::<2>(head.id).unwrap())).map(|(a, b)| a - b).collect();
    for (index, (d, w)) in head_difference.iter().zip(flat(head.val())).enumerate() {
        assert!((d - 0.25 * w).abs() <= 1e-5, "head weight [{index}]: {d} against β·w = {}", 0.25 * w);
    }
}

/// `regularise bss η k` (Chen et al. 2019) on features whose singular values are known: rows 3, 2
/// and 0.5 times orthonormal vectors give σ = 3, 2, 0.5, so the term is η·0.25 with k 1 and
/// η·(0.25 + 4) with k 2, and features with more rows than columns (the other Gram matrix) give
/// the same. Its gradient against finite differences of the term itself, whose SVD is recomputed at
/// every point: the detached singular vectors give the exact gradient 2σ u vᵀ.
#[test]
fn bss_is_eta_times_the_smallest_squared_singular_values_with_their_gradient() {
    use tlrun::check::recipe::Bss;
    use tlrun::runtime::bss::penalty;
    let device = Device::flex().autodiff();
    let (a, b) = (0.6f32, 0.8f32);
    // Orthonormal rows in 4 dimensions: (a, b, 0, 0), (−b, a, 0, 0), (0, 0, a, b).
    let rows = [[a, b, 0.0, 0.0], [-b, a, 0.0, 0.0], [0.0, 0.0, a, b]];
    let scaled: Vec<f32> = rows.iter().zip([3.0f32, 2.0, 0.5]).flat_map(|(row, s)| row.map(|x| x * s)).collect();
    let value = |values: &[f32], shape: [usize; 2], k: usize| {
        let features = Tensor::<2>::from_data(TensorData::new(values.to_vec(), shape), &device);
        f64::from(penalty(features, &Bss { eta: 0.1, k }).into_scalar::<f32>())
    };
    assert!((value(&scaled, [3, 4], 1) - 0.1 * 0.25).abs() < 1e-6);
    assert!((value(&scaled, [3, 4], 2) - 0.1 * 4.25).abs() < 1e-5);
    let transposed: Vec<f32> = (0..4).flat_map(|j| (0..3).map(|i| scaled[i * 4 + j]).collect::<Vec<_>>()).collect();
    assert!((value(&transposed, [4, 3], 1) - 0.1 * 0.25).abs() < 1e-6, "Fᵀ has the same singular values");

    for (shape, k) in [([5, 7], 2), ([6, 3], 1)] {
        let count = shape[0] * shape[1];
        let values: Vec<f32> = (0..count).map(|i| ((i * 37 % 23) as f32 - 11.0) / 7.0 + if i % (shape[1] + 1) == 0 { 1.5 } else { 0.0 }).collect();
        let features = Tensor::<2>::from_data(TensorData::new(values.clone(), shape), &device).require_grad();
        let grads = penalty(features.clone(), &Bss { eta: 0.1, k }).backward();
        let gradient = features.grad(&grads).expect("a gradient").into_data().try_to_vec::<f32>().unwrap();
        let step = 1e-2f32;
        for index in 0..count {
            let (mut up, mut down) = (values.clone(), values.clone());
            up[index] += step;
            down[index] -= step;
            let numeric = (value(&up, shape, k) - value(&down, shape, k)) / (2.0 * f64::from(step));
            let analytic = f64::from(gradient[index]);
            assert!((numeric - analytic).abs() <= 2e-3 + 1e-2 * numeric.abs(), "{shape:?} k {k} [{index}]: {analytic} against {numeric}");
        }
        assert!(gradient.iter().any(|g| g.abs() > 1e-3), "a test whose gradient is not zero");
    }
}

/// BSS in the trainer: on the same batch, the gradient with the term differs from the one without
/// (on the head's input features it acts through the backbone), and the loss reported is the data's.
#[test]
fn bss_acts_on_the_backbone_through_the_heads_input() {
    let text = |regularise: &str| format!("recipe \"b\"\nseed 3\nbackbone resnet_small from none\ndata {{ train \"unused\" batch 8 size 16 }}\n{regularise}stage s {{ train all epochs 1 lr 1e-3 }}\n");
    let (plain, bss) = (recipe(&text("")), recipe(&text("regularise bss 0.5 2\n")));
    assert_eq!(bss.bss, Some(tlrun::check::recipe::Bss { eta: 0.5, k: 2 }));
    assert_eq!(recipe(&text("regularise l2sp 0.1 0 bss\n")).bss, Some(tlrun::check::recipe::Bss { eta: 0.001, k: 1 }), "the paper's defaults");
    let data = tiny_data();
    let device = Device::flex().autodiff();
    let network = initial_network(&plain, data.classes.len());
    let (mut without, mut with) = (Trainer::new(&plain, device.clone(), &data), Trainer::new(&bss, device, &data));
    let indices: Vec<usize> = (0..data.train.labels.len().min(6)).collect();
    let (moved, same_head) = what_a_term_moves(&network, &mut without, &mut with, &indices);
    assert!(moved > 0, "BSS changes the backbone's gradient");
    assert!(same_head, "the head's last linear comes after the features: BSS leaves its gradient alone");
}

/// One training batch through a trainer without a loss term and one with it, on the same
/// network. The loss reported must be the data's in both. Returns how many values of the stem
/// convolution's gradient the term moved (by more than 1e-7), and whether the gradient of the
/// head's last linear is bit-identical.
fn what_a_term_moves(network: &Network, without: &mut Trainer, with: &mut Trainer, indices: &[usize]) -> (usize, bool) {
    let batch = |trainer: &mut Trainer| trainer.training_batch(16, indices, &mut tlrun::data::SplitMix64::new(1));
    let (plain_batch, term_batch) = (batch(without), batch(with));
    let (plain_grads, plain_loss) = without.gradients(network, plain_batch, 1.0).unwrap_or_else(|_| panic!("finite"));
    let (term_grads, term_loss) = with.gradients(network, term_batch, 1.0).unwrap_or_else(|_| panic!("finite"));
    assert_eq!(plain_loss.to_bits(), term_loss.to_bits(), "the data's loss is reported");
    let values = |tensor: Tensor<4>| tensor.into_data().try_to_vec::<f32>().unwrap();
    let conv = &network.backbone.conv1.as_ref().unwrap().weight;
    let moved = values(term_grads.get::<4>(conv.id).unwrap()).iter().zip(values(plain_grads.get::<4>(conv.id).unwrap())).filter(|(a, b)| (*a - b).abs() > 1e-7).count();
    let head = &network.head.linears[0].weight;
    let flat = |tensor: Tensor<2>| tensor.into_data().try_to_vec::<f32>().unwrap();
    let same_head = flat(term_grads.get::<2>(head.id).unwrap()).iter().zip(flat(plain_grads.get::<2>(head.id).unwrap())).all(|(a, b)| a.to_bits() == b.to_bits());
    (moved, same_head)
}

/// `regularise lwf λ T` (Li and Hoiem 2016) against a hand-computed value and gradient: with
/// p = softmax(t/T) from the frozen starting network (its pooled features through the pretrained
/// classifier W, b) and q = softmax((F Wᵀ + b)/T) on features F, the term is λ·T²·mean KL(p‖q) and
/// its gradient on F is λ·T/N · (q − p) W. On the starting network's own features it is 0.
#[test]
fn lwf_is_lambda_t_squared_kl_to_the_pretrained_outputs_with_its_gradient() {
    use tlrun::runtime::lwf::{Classifier, Teacher};
    let text = "recipe \"l\"\nseed 3\nbackbone resnet_small from file \"w.safetensors\"\ndata { train \"unused\" batch 8 size 16 }\nhead { pool avg  linear classes }\nregularise lwf 0.5 2\nstage s { train all epochs 1 lr 1e-3 }\n";
    let with = recipe(text);
    let lwf = with.lwf.expect("the term checks");
    assert_eq!(lwf, tlrun::check::recipe::Lwf { lambda: 0.5, temperature: 2.0 });
    let data = tiny_data();
    let network = initial_network(&with, data.classes.len());
    let device = Device::flex().autodiff();
    let (k, d) = (3usize, 64usize);
    let weight: Vec<f32> = (0..k * d).map(|i| ((i * 37 % 29) as f32 - 14.0) / 20.0).collect();
    let bias = [0.1f32, -0.2, 0.05];
    let classifier = Classifier { weight: TensorData::new(weight.clone(), [k, d]), bias: TensorData::new(bias.to_vec(), [k]) };
    let teacher = Teacher::new(&network.backbone, &classifier, &device).unwrap();
    let mut trainer = Trainer::new(&with, device.clone(), &data);
    let indices: Vec<usize> = (0..6).collect();
    let images = trainer.training_batch(16, &indices, &mut tlrun::data::SplitMix64::new(1)).images;
    let n = indices.len();
    // The starting network's pooled features, as the teacher computes them.
    let pooled = network.backbone.valid().forward(images.clone().without_autodiff()).mean_dim(3).mean_dim(2).reshape([n, d]);
    let start: Vec<f32> = pooled.into_data().try_to_vec::<f32>().unwrap();
    let value = |features: &[f32]| f64::from(teacher.penalty(images.clone(), Tensor::<2>::from_data(TensorData::new(features.to_vec(), [n, d]), &device), &lwf).into_scalar::<f32>());
    assert!(value(&start).abs() < 1e-6, "no term where training starts: {}", value(&start));

    let moved: Vec<f32> = start.iter().enumerate().map(|(i, x)| x + ((i * 13 % 7) as f32 - 3.0) / 10.0).collect();
    let features = Tensor::<2>::from_data(TensorData::new(moved.clone(), [n, d]), &device).require_grad();
    let term = teacher.penalty(images.clone(), features.clone(), &lwf);
    let got_value = f64::from(term.clone().into_scalar::<f32>());
    let gradient = features.grad(&term.backward()).unwrap().into_data().try_to_vec::<f32>().unwrap();
    // By hand, in f64.
    let scores = |f: &[f32], row: usize| -> Vec<f64> {
        (0..k).map(|c| (0..d).map(|j| f64::from(f[row * d + j]) * f64::from(weight[c * d + j])).sum::<f64>() + f64::from(bias[c])).collect()
    };
    let softmax_t = |s: Vec<f64>| {
        let e: Vec<f64> = s.iter().map(|x| (x / 2.0).exp()).collect();
        let z: f64 = e.iter().sum();
        e.into_iter().map(|x| x / z).collect::<Vec<_>>()
    };
    let mut expected_value = 0.0;
    for row in 0..n {
        let (p, q) = (softmax_t(scores(&start, row)), softmax_t(scores(&moved, row)));
        expected_value += p.iter().zip(&q).map(|(p, q)| p * (p.ln() - q.ln())).sum::<f64>();
        for j in 0..d {
            let expected: f64 = (0..k).map(|c| 0.5 * 2.0 / n as f64 * (q[c] - p[c]) * f64::from(weight[c * d + j])).sum();
            let got = f64::from(gradient[row * d + j]);
            assert!((got - expected).abs() <= 1e-5 + 1e-3 * expected.abs(), "[{row}, {j}]: {got} against {expected}");
        }
    }
    let expected_value = 0.5 * 4.0 * expected_value / n as f64;
    assert!(expected_value > 1e-3 && (got_value - expected_value).abs() <= 1e-4 * expected_value.max(1.0), "{got_value} against {expected_value}");
}

/// LwF in the trainer: with the teacher set, the step's gradient changes on the backbone and not
/// on the new head (the term reads the head's input, not its output), and the loss reported is
/// the data's.
#[test]
fn lwf_acts_on_the_backbone_not_on_the_new_head() {
    use tlrun::runtime::lwf::{Classifier, Teacher};
    let text = |regularise: &str| format!("recipe \"l\"\nseed 3\nbackbone resnet_small from file \"w.safetensors\"\ndata {{ train \"unused\" batch 8 size 16 }}\nhead {{ pool avg  linear classes }}\n{regularise}stage s {{ train all epochs 1 lr 1e-3 }}\n");
    let (plain, with) = (recipe(&text("")), recipe(&text("regularise lwf 4\n")));
    assert_eq!(with.lwf, Some(tlrun::check::recipe::Lwf { lambda: 4.0, temperature: 2.0 }), "T's default");
    let data = tiny_data();
    let device = Device::flex().autodiff();
    let network = initial_network(&plain, data.classes.len());
    let weight: Vec<f32> = (0..3 * 64).map(|i| ((i * 41 % 31) as f32 - 15.0) / 10.0).collect();
    let classifier = Classifier { weight: TensorData::new(weight, [3, 64]), bias: TensorData::new(vec![0.0f32; 3], [3]) };
    // A teacher from another network, so that the term is not 0 where training starts.
    let other = {
        device.seed(77);
        Network::new(&plain, data.classes.len(), &device)
    };
    let (mut without, mut lwf) = (Trainer::new(&plain, device.clone(), &data), Trainer::new(&with, device.clone(), &data));
    lwf.teacher = Some(Teacher::new(&other.backbone, &classifier, &device).unwrap());
    let indices: Vec<usize> = (0..6).collect();
    let (moved, same_head) = what_a_term_moves(&network, &mut without, &mut lwf, &indices);
    assert!(moved > 0, "LwF changes the backbone's gradient");
    assert!(same_head, "the new head's gradient is the data's alone");
}
