//! The run folder: every file is written whole (temporary file, fsync, rename) or not at all.

use std::path::{Path, PathBuf};

pub use crate::atomic_file::{sync_and_rename, write_atomic};

use crate::diagnostics::{Code, Diagnostic};

/// A run's folder, `runs/<recipe>/<timestamp>/` unless `--out` names one.
#[derive(Debug, Clone)]
pub struct RunFolder {
    pub path: PathBuf,
}

impl RunFolder {
    pub fn create(path: PathBuf) -> Result<RunFolder, Diagnostic> {
        std::fs::create_dir_all(&path).map_err(|error| {
            Diagnostic::new(Code::RunFolderUnwritable, format!("cannot create run folder {}: {error}", path.display()))
                .with_help("choose another place with `--out DIR`")
        })?;
        let probe = path.join(".write-probe");
        write_atomic(&probe, b"ok")?;
        let _ = std::fs::remove_file(&probe);
        if let Some(free) = free_bytes(&path) {
            if free < MINIMUM_FREE_BYTES {
                return Err(Diagnostic::new(
                    Code::RunFolderUnwritable,
                    format!("the disk holding {} has only {} MiB free", path.display(), free >> 20),
                )
                .with_help("checkpoints and weights need room: free some space or choose another place with `--out DIR`"));
            }
        }
        Ok(RunFolder { path })
    }

    /// `runs/<recipe>/<UTC timestamp>`, or `<timestamp>-2`, `-3`… when a run of the same recipe
    /// started in the same second: a new run never writes into an earlier one's folder.
    pub fn default_path(root: &Path, recipe: &str) -> PathBuf {
        let folder = root.join("runs").join(sanitize(recipe));
        let stamp = utc_timestamp();
        let mut path = folder.join(&stamp);
        let mut count = 1;
        while path.exists() {
            count += 1;
            path = folder.join(format!("{stamp}-{count}"));
        }
        path
    }

    pub fn file(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    pub fn write(&self, name: &str, contents: &[u8]) -> Result<(), Diagnostic> {
        write_atomic(&self.file(name), contents)
    }
}

/// Below this, a run would fail mid-way writing checkpoints: refuse before the first step.
const MINIMUM_FREE_BYTES: u64 = 64 << 20;

/// Free bytes for unprivileged users on the file system holding `path` (None if unknown).
fn free_bytes(path: &Path) -> Option<u64> {
    use std::os::unix::ffi::OsStrExt;
    let name = std::ffi::CString::new(path.as_os_str().as_bytes()).ok()?;
    let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid NUL-terminated path and `stats` a properly sized out-parameter.
    let result = unsafe { libc::statvfs(name.as_ptr(), &mut stats) };
    (result == 0).then(|| u64::from(stats.f_bavail) * u64::from(stats.f_frsize))
}

fn sanitize(name: &str) -> String {
    name.chars().map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '_' }).collect()
}

/// `YYYYMMDD-HHMMSS` in UTC, from the system clock (days-from-civil inverse, no date crate needed).
pub fn utc_timestamp() -> String {
    let seconds = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (hour, minute, second) = (rest / 3600, rest % 3600 / 60, rest % 60);
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 { month_index + 3 } else { month_index - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}{month:02}{day:02}-{hour:02}{minute:02}{second:02}")
}
