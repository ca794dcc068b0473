//! Small-sample statistics for seeds: mean, sample standard deviation, and Student's t interval.

/// Mean, sample standard deviation (n − 1) and count; the deviation is NaN for one value.
pub fn mean_std(values: &[f64]) -> (f64, f64, usize) {
    let count = values.len();
    if count == 0 {
        return (f64::NAN, f64::NAN, 0);
    }
    let mean = values.iter().sum::<f64>() / count as f64;
    let std = if count > 1 { (values.iter().map(|value| (value - mean).powi(2)).sum::<f64>() / (count - 1) as f64).sqrt() } else { f64::NAN };
    (mean, std, count)
}

/// The 97.5% quantile of Student's t with `freedom` degrees of freedom (a two-sided 95% interval).
pub fn t_975(freedom: usize) -> f64 {
    // scipy.stats.t.ppf(0.975, n) for n = 1..30.
    const TABLE: [f64; 30] = [
        12.70620, 4.30265, 3.18245, 2.77645, 2.57058, 2.44691, 2.36462, 2.30600, 2.26216, 2.22814, 2.20099, 2.17881, 2.16037, 2.14479,
        2.13145, 2.11991, 2.10982, 2.10092, 2.09302, 2.08596, 2.07961, 2.07387, 2.06866, 2.06390, 2.05954, 2.05553, 2.05183, 2.04841,
        2.04523, 2.04227,
    ];
    match freedom {
        0 => f64::NAN,
        1..=30 => TABLE[freedom - 1],
        // Linear between 30 (2.04227) and 60 (2.00030) degrees of freedom: within 0.01 of scipy.
        31..=60 => 2.04227 - (2.04227 - 2.00030) * (freedom - 30) as f64 / 30.0,
        _ => 1.96,
    }
}

/// A paired comparison: the mean of `a[i] − b[i]` and its 95% interval (paired t).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PairedDifference {
    pub mean: f64,
    pub low: f64,
    pub high: f64,
    pub pairs: usize,
}

pub fn paired_difference(a: &[f64], b: &[f64]) -> PairedDifference {
    let differences: Vec<f64> = a.iter().zip(b).map(|(a, b)| a - b).collect();
    let (mean, std, pairs) = mean_std(&differences);
    let half = t_975(pairs.saturating_sub(1)) * std / (pairs as f64).sqrt();
    PairedDifference { mean, low: mean - half, high: mean + half, pairs }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mean_and_sample_deviation() {
        let (mean, std, count) = mean_std(&[2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!((mean, count), (5.0, 8));
        assert!((std - 2.138_089_935).abs() < 1e-8, "{std}");
    }

    /// scipy.stats.ttest_rel(a, b).confidence_interval(0.95) for these pairs: (1.12201, 2.87799).
    #[test]
    fn paired_t_interval_matches_the_textbook() {
        let difference = paired_difference(&[10.0, 12.0, 13.0, 15.0, 11.0], &[8.0, 11.0, 10.0, 13.0, 9.0]);
        assert!((difference.mean - 2.0).abs() < 1e-12);
        assert!((difference.low - 1.12201).abs() < 1e-4 && (difference.high - 2.87799).abs() < 1e-4, "{difference:?}");
        assert_eq!(difference.pairs, 5);
    }
}
