//! A tiny deterministic PRNG. Self-contained so that a seed gives the same images, splits and
//! batch orders on every machine and every version of every dependency.

use serde::{Deserialize, Serialize};

/// Sebastiano Vigna's SplitMix64: one u64 of state, good statistical quality for data shuffling.
/// The whole state is the `u64`, so a run checkpoints it with serde and resumes exactly.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SplitMix64 {
    state: u64,
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output finaliser: a bijective avalanche of the 64 bits.
pub fn mix64(value: u64) -> u64 {
    let mut z = value;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl SplitMix64 {
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// An independent generator for one sub-stream of a seed (an epoch, a class, an image), so
    /// parallel or reordered work draws the same numbers as sequential work.
    pub fn for_stream(seed: u64, stream: u64) -> Self {
        SplitMix64::new(mix64(seed ^ mix64(stream.wrapping_add(GOLDEN_GAMMA))))
    }

    /// The state to checkpoint; `SplitMix64::new(state)` resumes the same sequence.
    pub fn state(&self) -> u64 {
        self.state
    }

    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GOLDEN_GAMMA);
        mix64(self.state)
    }

    /// Uniform in [0, 1): the top 24 bits, which an f32 mantissa represents exactly.
    pub fn next_f32(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 24) as f32
    }

    /// Uniform in [low, high).
    pub fn range_f32(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.next_f32()
    }

    /// Uniform in 0..bound without modulo bias (Lemire's method); 0 when `bound` is 0.
    pub fn below(&mut self, bound: usize) -> usize {
        if bound <= 1 {
            return 0;
        }
        let bound = bound as u64;
        let threshold = bound.wrapping_neg() % bound;
        loop {
            let product = u128::from(self.next_u64()) * u128::from(bound);
            if (product as u64) >= threshold {
                return (product >> 64) as usize;
            }
        }
    }

    /// Fisher-Yates: every permutation equally likely.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for last in (1..items.len()).rev() {
            let other = self.below(last + 1);
            items.swap(last, other);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_the_reference_sequence() {
        // First outputs of the reference C implementation seeded with 1234567.
        let mut rng = SplitMix64::new(1234567);
        assert_eq!(rng.next_u64(), 6457827717110365317);
        assert_eq!(rng.next_u64(), 3203168211198807973);
        assert_eq!(rng.next_u64(), 9817491932198370423);
    }

    #[test]
    fn resumes_from_its_state() {
        let mut rng = SplitMix64::new(42);
        rng.next_u64();
        let saved = serde_json::to_string(&rng).unwrap();
        assert_eq!(saved, rng.state().to_string());
        let mut resumed: SplitMix64 = serde_json::from_str(&saved).unwrap();
        assert_eq!(resumed.next_u64(), rng.next_u64());
        assert_eq!(SplitMix64::new(rng.state()).next_u64(), rng.clone().next_u64());
    }

    #[test]
    fn floats_and_bounds_stay_in_range() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0usize; 3];
        for _ in 0..3000 {
            let x = rng.next_f32();
            assert!((0.0..1.0).contains(&x));
            counts[rng.below(3)] += 1;
        }
        // Each of three outcomes lands near 1000.
        assert!(counts.iter().all(|&c| (850..1150).contains(&c)), "{counts:?}");
        assert_eq!(rng.below(0), 0);
        assert_eq!(rng.below(1), 0);
    }

    #[test]
    fn shuffle_is_a_deterministic_permutation() {
        let mut a: Vec<u32> = (0..20).collect();
        let mut b = a.clone();
        SplitMix64::new(9).shuffle(&mut a);
        SplitMix64::new(9).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..20).collect::<Vec<_>>());
        let mut sorted = a.clone();
        sorted.sort();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn streams_differ() {
        let a = SplitMix64::for_stream(1, 0).next_u64();
        let b = SplitMix64::for_stream(1, 1).next_u64();
        let c = SplitMix64::for_stream(2, 0).next_u64();
        assert!(a != b && a != c && b != c);
    }
}
