//! tlrun: transfer learning as a checkable recipe.
//!
//! Data flows one way: `syntax` (text → AST) → `check` (AST → recipe + diagnostics) → `plan`
//! (recipe → DAG) → `runtime` (burn). The front end (`syntax`, `check`, `plan`, `arch`,
//! `diagnostics`) does no IO and never imports burn.

pub mod arch;
pub mod atomic_file;
pub mod builtin_data;
pub mod check;
// Image folders, decoding, resizing, splits, augmentation, synthetic images: no burn, so lint
// and the CLI read data without the runtime.
pub mod data;
pub mod data_counts;
#[cfg(feature = "runtime")]
pub mod cli;
pub mod diagnostics;
pub mod export_format;
pub mod limits;
pub mod model_card;
pub mod plan;
pub mod prediction_file;
pub mod probe;
pub mod recipe_text;
pub mod report;
pub mod run_files;
pub mod sha256;
pub mod render;
pub mod span;
pub mod sweep;
pub mod syntax;
pub mod zoo;
#[cfg(feature = "runtime")]
pub mod runtime;
