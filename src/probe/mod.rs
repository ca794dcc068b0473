//! Transferability before training: LogME evidence, the shrinkage H-score, PARC and a linear probe
//! over pooled features at each candidate cut, and the Fréchet distance between target and pretraining features. Pure math on
//! numbers the runtime hands over: no IO, no burn.

pub mod advice;
pub mod eigen;
pub mod features;
pub mod frechet;
pub mod hscore;
pub mod linear_probe;
pub mod logme;
pub mod parc;

pub use advice::{Advice, ScoredCut, Shift, advise};
pub use features::{Features, stratified_split};
pub use frechet::{FeatureStats, frechet_distance};
pub use linear_probe::LinearProbe;
pub use hscore::hscore;
pub use logme::{LogMe, logme};
pub use parc::parc;
