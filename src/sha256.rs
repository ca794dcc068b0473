//! A file's SHA-256: what a zoo card records for its weights, and what pipelines compare to
//! decide whether a recipe is up to date. Burn-free, so the CLI needs no runtime for it.

use std::path::Path;

/// sha256 of a file, lowercase hex, read in chunks.
pub fn sha256_file(path: &Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = file.read(&mut buffer)?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
    }
    Ok(hasher.finalize().iter().map(|byte| format!("{byte:02x}")).collect())
}
