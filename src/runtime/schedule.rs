//! Learning-rate schedules as a factor on each group's rate, per optimizer step within a stage.

use crate::check::recipe::ScheduleKind;

/// fastai's fit_one_cycle defaults: warm up over 25% of the steps from lr/25, then anneal to lr/1e5.
const ONECYCLE_WARMUP: f64 = 0.25;
const ONECYCLE_DIV: f64 = 25.0;
const ONECYCLE_DIV_FINAL: f64 = 1e5;

fn cosine_between(start: f64, end: f64, progress: f64) -> f64 {
    end + (start - end) * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos()) / 2.0
}

/// The factor for step `step` (0-based) of `total` steps.
pub fn factor(schedule: ScheduleKind, step: usize, total: usize) -> f64 {
    let total = total.max(1);
    let progress = step as f64 / total as f64;
    match schedule {
        ScheduleKind::Constant => 1.0,
        ScheduleKind::Cosine => cosine_between(1.0, 0.0, progress),
        ScheduleKind::Onecycle => {
            let warmup_steps = (total as f64 * ONECYCLE_WARMUP).max(1.0);
            let position = step as f64;
            if position < warmup_steps {
                cosine_between(1.0 / ONECYCLE_DIV, 1.0, position / warmup_steps)
            } else {
                let remaining = (total as f64 - warmup_steps).max(1.0);
                cosine_between(1.0, 1.0 / ONECYCLE_DIV_FINAL, (position - warmup_steps) / remaining)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onecycle_rises_to_the_peak_then_falls() {
        let total = 100;
        let factors: Vec<f64> = (0..total).map(|step| factor(ScheduleKind::Onecycle, step, total)).collect();
        assert!((factors[0] - 1.0 / 25.0).abs() < 1e-9);
        let peak = factors.iter().cloned().fold(f64::MIN, f64::max);
        let peak_step = factors.iter().position(|f| *f == peak).unwrap();
        assert!((peak - 1.0).abs() < 1e-3 && (24..=26).contains(&peak_step), "peak {peak} at {peak_step}");
        assert!(factors[99] < 1e-3);
    }

    #[test]
    fn cosine_and_constant() {
        assert_eq!(factor(ScheduleKind::Constant, 7, 10), 1.0);
        assert!((factor(ScheduleKind::Cosine, 0, 10) - 1.0).abs() < 1e-12);
        assert!((factor(ScheduleKind::Cosine, 5, 10) - 0.5).abs() < 1e-12);
    }
}
