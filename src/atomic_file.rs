//! Files written whole or not at all: a temporary name, fsync, rename, fsync of the folder. Used
//! by the runtime (run folders, weights), reports, the zoo and the CLI; needs nothing from burn.

use std::io::Write;
use std::path::Path;

use crate::diagnostics::{Code, Diagnostic};

/// fsync `temporary`, then rename it over `path`, then fsync the folder so the rename survives a crash.
pub fn sync_and_rename(temporary: &Path, path: &Path) -> std::io::Result<()> {
    std::fs::File::open(temporary)?.sync_all()?;
    std::fs::rename(temporary, path)?;
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        if let Ok(folder) = std::fs::File::open(parent) {
            let _ = folder.sync_all();
        }
    }
    Ok(())
}

/// Write `contents` to `path` atomically.
pub fn write_atomic(path: &Path, contents: &[u8]) -> Result<(), Diagnostic> {
    let attempt = || -> std::io::Result<()> {
        let temporary = path.with_extension(format!(
            "{}.partial",
            path.extension().map(|extension| extension.to_string_lossy().into_owned()).unwrap_or_default()
        ));
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        drop(file);
        sync_and_rename(&temporary, path)
    };
    attempt().map_err(|error| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write {}: {error}", path.display()))
            .with_help("check that the run folder is writable and the disk has room")
    })
}

