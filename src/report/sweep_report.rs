//! A sweep folder's summary as files: the numbers (`sweep_summary.rs`) drawn (`plots.rs`) and laid
//! out (`html.rs`). Above all three, so none of them imports another's caller.

use std::path::{Path, PathBuf};

use super::sweep_summary::{SUMMARY_FILE, SweepSummary};
use crate::diagnostics::{Code, Diagnostic};

/// summary.json, summary.png (accuracy of every variant against each axis, each group's mean
/// with ±1 standard deviation) and summary.html in `folder`. Returns the HTML's path.
pub fn write_summary(folder: &Path, summary: &SweepSummary) -> Result<PathBuf, Diagnostic> {
    let json = serde_json::to_string_pretty(summary)
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {SUMMARY_FILE}: {error}")))?;
    crate::atomic_file::write_atomic(&folder.join(SUMMARY_FILE), json.as_bytes())?;
    let png = super::plots::sweep_png(summary).map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot draw the sweep plot: {error}")))?;
    crate::atomic_file::write_atomic(&folder.join("summary.png"), &png.bytes)?;
    let path = folder.join("summary.html");
    crate::atomic_file::write_atomic(&path, super::html::sweep_html(summary, &png).as_bytes())?;
    Ok(path)
}
