//! Reports people would rather look at than read: PNG plots and a self-contained report.html per
//! run, a list of runs, and side-by-side comparisons. Reads run folders; never imports burn.

mod base64;
mod html;
mod plots;
mod run_data;
pub mod stats;
pub mod sweep_report;
pub mod sweep_summary;

pub use html::{compare_html, compare_sweeps_html, write_report};
pub use plots::{GalleryTile, Png, batch_png, confusion_png, most_confused, most_confused_png, top_losses_png, curves_png, filters_png, lr_find_png, lr_png, movement_png, overlay_png, probe_png, sizes_png};
pub use run_data::{RunData, find_runs};
