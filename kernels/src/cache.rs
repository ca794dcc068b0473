//! The CPU's data-cache sizes, read once at run time (Linux: /sys/devices/system/cpu/cpu0/cache),
//! for the kernels whose choice depends on what stays in cache. Where they cannot be read, the
//! sizes of a common current core: 48 KB L1d, 2 MB L2 (Intel since Sapphire Rapids; AMD Zen 4
//! has 32 KB and 1 MB).

use std::sync::OnceLock;

/// Sizes in bytes of one core's caches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CacheSizes {
    pub l1_data: usize,
    pub l2: usize,
}

const FALLBACK: CacheSizes = CacheSizes { l1_data: 48 << 10, l2: 2 << 20 };

/// This CPU's sizes (or [`FALLBACK`]'s where the system does not say).
pub fn sizes() -> CacheSizes {
    static SIZES: OnceLock<CacheSizes> = OnceLock::new();
    *SIZES.get_or_init(|| read_sysfs().unwrap_or(FALLBACK))
}

fn read_sysfs() -> Option<CacheSizes> {
    let mut l1_data = None;
    let mut l2 = None;
    for index in 0..8 {
        let folder = format!("/sys/devices/system/cpu/cpu0/cache/index{index}");
        let Ok(level) = std::fs::read_to_string(format!("{folder}/level")) else { break };
        let kind = std::fs::read_to_string(format!("{folder}/type")).unwrap_or_default();
        let size = std::fs::read_to_string(format!("{folder}/size")).ok().and_then(|text| parse_size(&text));
        match (level.trim(), kind.trim()) {
            ("1", "Data") => l1_data = size,
            ("2", _) => l2 = size,
            _ => {}
        }
    }
    Some(CacheSizes { l1_data: l1_data?, l2: l2? })
}

/// `48K`, `2048K`, `2M`, `1024` (bytes) → bytes.
fn parse_size(text: &str) -> Option<usize> {
    let text = text.trim();
    let (digits, unit) = match text.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => text.split_at(at),
        None => (text, ""),
    };
    let value: usize = digits.parse().ok()?;
    let scale = match unit.trim() {
        "" => 1,
        "K" | "k" | "KB" => 1 << 10,
        "M" | "MB" => 1 << 20,
        _ => return None,
    };
    value.checked_mul(scale).filter(|&bytes| bytes > 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_as_linux_writes_them() {
        assert_eq!(parse_size("48K\n"), Some(48 << 10));
        assert_eq!(parse_size("2048K"), Some(2 << 20));
        assert_eq!(parse_size("2M"), Some(2 << 20));
        assert_eq!(parse_size("512"), Some(512));
        assert_eq!(parse_size("0K"), None);
        assert_eq!(parse_size("big"), None);
    }

    #[test]
    fn the_sizes_in_use_are_plausible() {
        let sizes = sizes();
        assert!((8 << 10..=1 << 20).contains(&sizes.l1_data), "{sizes:?}");
        assert!(sizes.l2 >= sizes.l1_data, "{sizes:?}");
    }
}
