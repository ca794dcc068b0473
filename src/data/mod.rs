//! Image data as plain buffers: folders, decoding, resizing, splits, batches and the built-in
//! synthetic data sets. No burn here: the training loop turns these `Vec<f32>`s into tensors.

mod augment;
mod batches;
mod decoded;
mod export;
mod image_folder;
mod input_files;
mod lighting;
mod mix;
mod resample;
mod rng;
mod scene;
mod shape;
mod sized_set;
mod split;
mod synthetic;

pub use augment::Augment;
pub use batches::{epoch_order, fill_batch};
pub use mix::{Mixed, mix_batch};
pub use decoded::{Decoded, DecodedImage, MAX_IMAGE_SIDE, decode_all};
pub use export::write_image_folder;
pub use image_folder::ImageFolder;
pub use input_files::InputFiles;
pub use rng::{SplitMix64, mix64};
pub use sized_set::{Fit, Frame, SizedSet, normalisation};
pub use split::split_indices;
pub use synthetic::{Motif, SyntheticTask, generate, task_names};
