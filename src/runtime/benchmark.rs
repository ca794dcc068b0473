//! `tlrun bench`: training and inference throughput (images/s) of real networks on random data,
//! plus peak memory. Speed lives here, not in timed tests.

use std::time::Instant;

use burn::prelude::*;
use serde::Serialize;

use super::model::Network;
use super::trainer::{Split, Trainer, TrainingBatch, TrainingData};
use crate::check::{NoWorld, check_source};

#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    pub network: String,
    pub size: u32,
    pub batch: usize,
    pub train_images_per_second: f64,
    pub infer_images_per_second: f64,
}

/// A recipe for `architecture` with every group training, so the whole network does backward.
fn bench_recipe(architecture: &str, size: u32, batch: usize) -> crate::check::recipe::Recipe {
    let text = format!(
        "recipe \"bench\"\nbackbone {architecture} from none\ndata {{ train \"unused\" batch {batch} size {size} }}\nstage bench {{ train all epochs 1 lr 1e-3 schedule constant }}\n"
    );
    let (recipe, _) = check_source(&text, "bench", &NoWorld);
    recipe.expect("the benchmark recipe is valid")
}

/// Time `steps` training steps and `steps` inference batches after `warmup` of each.
pub fn measure(architecture: &str, size: u32, batch: usize, warmup: usize, steps: usize) -> Result<Throughput, crate::diagnostics::Diagnostic> {
    let recipe = bench_recipe(architecture, size, batch);
    let classes = 10;
    let device = Device::flex().autodiff();
    device.seed(0);
    let data = TrainingData {
        classes: (0..classes).map(|class| class.to_string()).collect(),
        train: Split { images: Vec::new(), labels: Vec::new() },
        valid: Split { images: Vec::new(), labels: Vec::new() },
    };
    let mut trainer = Trainer::new(&recipe, device.clone(), &data);
    let stage = &recipe.stages[0];
    let mut network = trainer.configure(Network::new(&recipe, classes, &device), stage)?;
    let mut optimizer = super::optimizer::build(&stage.optimizer).optimizer;
    let side = size as usize;
    let batch_images = || Tensor::<4>::random([batch, 3, side, side], burn::tensor::Distribution::Normal(0.0, 1.0), &device);
    let labels: Vec<i64> = (0..batch as i64).map(|index| index % classes as i64).collect();
    let batch_labels = || Tensor::<1, Int>::from_data(TensorData::new(labels.clone(), [batch]), &device);

    let mut train_seconds = 0.0;
    for step in 0..warmup + steps {
        let batch = TrainingBatch { images: batch_images(), labels: batch_labels(), mixed: None };
        let started = Instant::now();
        let rates = trainer.learning_rates(stage, 1.0);
        network = match trainer.step(network, &mut optimizer, batch, rates) {
            Ok((network, _)) | Err((network, _)) => network,
        };
        if step >= warmup {
            train_seconds += started.elapsed().as_secs_f64();
        }
    }

    let inference = network.valid();
    let plain = device.clone().without_autodiff();
    let mut infer_seconds = 0.0;
    for step in 0..warmup + steps {
        let images = Tensor::<4>::random([batch, 3, side, side], burn::tensor::Distribution::Normal(0.0, 1.0), &plain);
        let started = Instant::now();
        let logits = inference.forward(images);
        let _ = logits.into_data();
        if step >= warmup {
            infer_seconds += started.elapsed().as_secs_f64();
        }
    }
    let images = (steps * batch) as f64;
    Ok(Throughput {
        network: architecture.to_string(),
        size,
        batch,
        train_images_per_second: images / train_seconds.max(1e-9),
        infer_images_per_second: images / infer_seconds.max(1e-9),
    })
}

/// Peak resident memory of this process in MiB (Linux; `None` elsewhere).
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Images/s the data side delivers (batch copy + flip/crop augmentation from the resize cache, then
/// tensor creation): it must stay far above training throughput so the model never waits.
pub fn data_images_per_second(size: u32, batch: usize) -> f64 {
    use crate::data::{Augment, SizedSet, SplitMix64, epoch_order, fill_batch, generate};
    let Ok((_, images, labels)) = generate("shapes-source", 64, size, 0) else { return 0.0 };
    let set = SizedSet::build(&images, &labels, size, &[0.5; 3], &[0.25; 3]);
    let augment = Augment::flip_and_crop(true, 4);
    let device = Device::flex();
    let order = epoch_order(set.labels.len(), 0, 1);
    let mut rng = SplitMix64::new(0);
    let (mut images_out, mut labels_out) = (Vec::new(), Vec::new());
    let rounds = 50;
    let started = Instant::now();
    for round in 0..rounds {
        let start = (round * batch) % (order.len() - batch);
        fill_batch(&set, &order[start..start + batch], &augment, &mut rng, &mut images_out, &mut labels_out);
        let side = size as usize;
        let tensor = Tensor::<4>::from_data(TensorData::new(std::mem::take(&mut images_out), [batch, 3, side, side]), &device);
        std::hint::black_box(tensor);
        labels_out.clear();
    }
    (rounds * batch) as f64 / started.elapsed().as_secs_f64().max(1e-9)
}

/// `tlrun predict`'s throughput, decoding included: `count` PNG files of `size` px drawn into a
/// temporary folder, then decoded, resized, normalised and inferred by the same path
/// `tlrun predict` takes, in batches of `batch`, predictions written to a CSV file. Compare
/// with `measure`'s inference figure for the same network and size.
pub fn predict_images_per_second(architecture: &str, size: u32, batch: usize, count: usize) -> Result<f64, crate::diagnostics::Diagnostic> {
    use crate::data::{InputFiles, generate, write_image_folder};
    use crate::model_card::{ModelCard, Preprocessing};
    let failed = |error: std::io::Error| crate::diagnostics::Diagnostic::new(crate::diagnostics::Code::RunFolderUnwritable, format!("benchmark folder: {error}"));
    let folder = std::env::temp_dir().join(format!("tlrun-predict-bench-{}", std::process::id()));
    let per_class = count.div_ceil(5);
    let (classes, images, labels) = generate("shapes-target", per_class, size, 0)?;
    write_image_folder(&folder, &classes, &images, &labels)?;
    let recipe = bench_recipe(architecture, size, batch);
    let mut card = ModelCard::of(&recipe, &classes);
    card.batch = batch;
    card.preprocessing = Preprocessing { size, ..card.preprocessing };
    let device = Device::flex();
    device.seed(0);
    let network = super::predictor::network_of(&card, &device)?;
    super::starting_network::materialize(&network);
    let predictor = super::predictor::Predictor::new(card, network, device);
    let inputs = InputFiles::gather(std::slice::from_ref(&folder), &classes)?;
    let out = folder.join("predictions.csv");
    let mut writer = crate::prediction_file::PredictionWriter::open(Some(&out), 1, true)?;
    let summary = predictor.predict_all(&inputs, &mut writer, false);
    std::fs::remove_dir_all(&folder).map_err(failed)?;
    let summary = summary?;
    Ok(summary.predicted as f64 / summary.seconds.max(1e-9))
}
