//! Which instruction set the kernels use: detected once, capped by `TLRUN_KERNELS_ISA`
//! (`portable`, `avx2` or `avx512`, as oneDNN's `ONEDNN_MAX_CPU_ISA`), so that the portable path
//! and the AVX2 builds can be tested and timed on a machine that has AVX-512. Every fast path
//! asks [`current`]; none asks the CPU itself.
//!
//! The cap binds tlrun's own kernels and its gemm calls (`matmul.rs` calls the capped level's
//! microkernels itself); burn-flex's own matmuls dispatch on the CPU's features regardless.

use std::sync::OnceLock;

/// An instruction-set level, ordered: each includes the ones below it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Isa {
    /// Whatever the crate is built for (SSE2 on x86-64, NEON on aarch64) and no intrinsics.
    Portable,
    /// AVX2 and FMA (x86-64-v3): the elementwise loops compiled for 8 lanes.
    Avx2,
    /// AVX-512F: every hand-written kernel, 16 lanes.
    Avx512,
}

/// The environment variable that caps [`current`].
pub const ENV: &str = "TLRUN_KERNELS_ISA";

impl Isa {
    pub fn name(self) -> &'static str {
        match self {
            Isa::Portable => "portable",
            Isa::Avx2 => "avx2",
            Isa::Avx512 => "avx512",
        }
    }

    /// `portable`, `avx2` or `avx512` (any case); `None` otherwise.
    pub fn parse(text: &str) -> Option<Isa> {
        [Isa::Portable, Isa::Avx2, Isa::Avx512].into_iter().find(|isa| isa.name().eq_ignore_ascii_case(text.trim()))
    }
}

/// The best level this CPU has, ignoring the cap.
pub fn detected() -> Isa {
    static DETECTED: OnceLock<Isa> = OnceLock::new();
    *DETECTED.get_or_init(detect)
}

fn detect() -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            return Isa::Avx512;
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            return Isa::Avx2;
        }
    }
    Isa::Portable
}

/// What the kernels use: [`detected`], lowered to `TLRUN_KERNELS_ISA` where that is set. A value
/// the variable cannot mean is reported once on stderr and ignored (no cap), never a panic.
pub fn current() -> Isa {
    static CURRENT: OnceLock<Isa> = OnceLock::new();
    *CURRENT.get_or_init(|| {
        let cap = match std::env::var(ENV) {
            Ok(text) => match Isa::parse(&text) {
                Some(cap) => Some(cap),
                None => {
                    eprintln!("warning: {ENV}={text:?} is not portable, avx2 or avx512; using the CPU's best ({})", detected().name());
                    None
                }
            },
            Err(_) => None,
        };
        capped(detected(), cap)
    })
}

fn capped(detected: Isa, cap: Option<Isa>) -> Isa {
    cap.map_or(detected, |cap| cap.min(detected))
}

/// Whether `TLRUN_KERNELS_ISA` holds the kernels below what this CPU has.
pub(crate) fn held_below_the_cpu() -> bool {
    current() < detected()
}

/// Whether the AVX-512 kernels run.
pub(crate) fn avx512() -> bool {
    current() >= Isa::Avx512
}

/// Whether the AVX2 + FMA builds run.
pub(crate) fn avx2() -> bool {
    current() >= Isa::Avx2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cap_lowers_the_level_and_never_raises_it() {
        assert_eq!(capped(Isa::Avx512, Some(Isa::Portable)), Isa::Portable);
        assert_eq!(capped(Isa::Avx512, Some(Isa::Avx2)), Isa::Avx2);
        assert_eq!(capped(Isa::Avx2, Some(Isa::Avx512)), Isa::Avx2);
        assert_eq!(capped(Isa::Portable, None), Isa::Portable);
    }

    #[test]
    fn names_parse_back() {
        for isa in [Isa::Portable, Isa::Avx2, Isa::Avx512] {
            assert_eq!(Isa::parse(isa.name()), Some(isa));
        }
        assert_eq!(Isa::parse(" AVX2 "), Some(Isa::Avx2));
        assert_eq!(Isa::parse("sse4"), None);
    }

    /// `.ci/run` sets `TLRUN_KERNELS_EXPECT` to the level it asked for (and the CPU has), so a
    /// run that meant to test the AVX-512 kernels fails here instead of passing without them.
    #[test]
    fn the_level_in_use_is_the_one_the_test_run_expects() {
        match std::env::var("TLRUN_KERNELS_EXPECT") {
            Ok(expected) => assert_eq!(Some(current()), Isa::parse(&expected), "{ENV}={:?}, detected {:?}", std::env::var(ENV), detected()),
            Err(_) => eprintln!("TLRUN_KERNELS_EXPECT unset: testing whatever level is in use ({})", current().name()),
        }
    }
}
