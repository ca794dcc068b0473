//! Runs a checked recipe on burn. The only module that imports burn.

pub mod data;
pub mod model;
pub mod device;
pub mod param_groups;
pub mod param_snapshot;
pub mod schedule;
pub mod run_folder;
pub mod weights;
pub mod optimizer;
pub mod best_epoch;
pub mod ema;
pub mod loss;
pub mod lr_finder;
pub mod trainer;
pub mod dataset;
pub mod runner;
pub mod publish;
pub mod benchmark;
pub mod allocator;
pub mod add_relu;
pub mod batch_norm;
pub mod conv;
pub mod conv_norm;
pub mod max_pool;
pub mod fused_adamw;
#[cfg(test)]
mod reference_inputs;
pub mod conv_benchmark;
pub mod kernel_choice;
pub mod checkpoint;
pub mod probe;
pub mod forgetting;
pub mod resume_point;
