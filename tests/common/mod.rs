//! Helpers shared by the runtime test files: tiny synthetic data, recipes, one step, one stage.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

use burn::prelude::*;
use tlrun::check::recipe::Recipe;
use tlrun::check::{NoWorld, check_source};
use tlrun::data::{SizedSet, generate, write_image_folder};
use tlrun::runtime::model::Network;
use tlrun::runtime::param_snapshot::snapshot;
use tlrun::runtime::trainer::{NoHooks, Split, Trainer, TrainingData};

pub fn recipe(text: &str) -> Recipe {
    let (recipe, diagnostics) = check_source(text, "test", &NoWorld);
    assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
    recipe.unwrap()
}

pub fn synthetic(per_class: usize, seed: u64) -> Split {
    let (_, images, labels) = generate("shapes-target", per_class, 16, seed).unwrap();
    Split { images, labels }
}

pub fn tiny_data() -> TrainingData {
    let (classes, _, _) = generate("shapes-target", 1, 16, 0).unwrap();
    TrainingData { classes, train: synthetic(8, 1), valid: synthetic(2, 2) }
}

pub const STAGES: &str = r#"recipe "t"
seed 5
backbone resnet_small from none
data { train "unused" batch 8 size 16 }
"#;

pub fn train_stage(recipe: &Recipe, data: &TrainingData) -> (BTreeMap<String, Vec<f32>>, BTreeMap<String, Vec<f32>>) {
    let device = Device::flex().autodiff();
    device.seed(recipe.seed);
    let network = Network::new(recipe, data.classes.len(), &device);
    let before = snapshot(&network);
    let mut trainer = Trainer::new(recipe, device, data);
    let network = trainer.run_stage(network, 0, &recipe.stages[0], None, &mut NoHooks).unwrap_or_else(|_| panic!("the stage runs")).network;
    (before, snapshot(&network))
}

/// The recipe's network with every parameter drawn now. Tests run in parallel and flex's random
/// generator is global, so two runs compared with each other must start from one such network
/// (cloned), never from two networks built from the same seed.
pub fn initial_network(recipe: &Recipe, classes: usize) -> Network {
    let device = Device::flex().autodiff();
    device.seed(recipe.seed);
    let network = Network::new(recipe, classes, &device);
    tlrun::runtime::starting_network::materialize(&network);
    network
}

/// An independent copy of `network` for `recipe`: clones share BatchNorm running statistics,
/// which training one of them would move in both.
pub fn copy_of(network: &Network, recipe: &Recipe) -> Network {
    let classes = network.head.linears.last().map_or(0, |linear| linear.weight.dims()[1]);
    let device = Device::flex().autodiff();
    Network::new(recipe, classes, &device).load_record(network.valid().into_record())
}

/// One optimizer step of the recipe's first stage on the first 8 training images at 16px, from
/// `initial`: the weights before and after.
pub fn one_step(recipe: &Recipe, data: &TrainingData, initial: &Network) -> (BTreeMap<String, Vec<f32>>, BTreeMap<String, Vec<f32>>) {
    let device = Device::flex().autodiff();
    let network = copy_of(initial, recipe);
    let before = snapshot(&network);
    let mut trainer = Trainer::new(recipe, device.clone(), data);
    let stage = &recipe.stages[0];
    let network = trainer.configure(network, stage).unwrap_or_else(|error| panic!("{}", error.message));
    let set = SizedSet::build(&data.train.images, &data.train.labels, 16, &recipe.data.mean, &recipe.data.std);
    let images = Tensor::<4>::from_data(TensorData::new(set.images[..8 * 3 * 16 * 16].to_vec(), [8, 3, 16, 16]), &device);
    let labels = Tensor::<1, Int>::from_data(TensorData::new(set.labels[..8].to_vec(), [8]), &device);
    let mut optimizer = tlrun::runtime::optimizer::build(&stage.optimizer).optimizer;
    let (network, _) = trainer
        .step(network, &mut optimizer, tlrun::runtime::trainer::TrainingBatch { images, labels, mixed: None }, trainer.learning_rates(stage, 1.0))
        .unwrap_or_else(|_| panic!("finite loss"));
    (before, snapshot(&network))
}

pub fn write_dataset(root: &Path, per_class: usize, seed: u64) {
    let (classes, images, labels) = generate("shapes-target", per_class, 24, seed).unwrap();
    write_image_folder(root, &classes, &images, &labels).unwrap();
}

pub fn tlrun(dir: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).output().unwrap()
}


/// `image` flipped left to right.
pub fn mirrored(image: &tlrun::data::DecodedImage) -> tlrun::data::DecodedImage {
    let (width, height) = (image.width as usize, image.height as usize);
    let mut pixels = image.pixels.clone();
    for row in 0..height {
        for column in 0..width {
            let from = (row * width + (width - 1 - column)) * 3;
            let to = (row * width + column) * 3;
            pixels[to..to + 3].copy_from_slice(&image.pixels[from..from + 3]);
        }
    }
    tlrun::data::DecodedImage { pixels, ..image.clone() }
}
