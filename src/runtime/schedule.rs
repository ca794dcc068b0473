//! Learning-rate schedules as a factor on each group's rate, and AdamW's β₁ under one-cycle, per
//! optimizer step within a stage.

use crate::check::recipe::{OneCycle, ScheduleKind, Stage};

fn cosine_between(start: f64, end: f64, progress: f64) -> f64 {
    end + (start - end) * (1.0 + (std::f64::consts::PI * progress.clamp(0.0, 1.0)).cos()) / 2.0
}

/// fastai's `combined_cos(pct, start, middle, end)`: cosine from `start` to `middle` over the first
/// `pct` of the steps, then cosine from `middle` to `end`. `step` is 0-based of `total`.
fn combined_cosine(pct: f64, (start, middle, end): (f64, f64, f64), step: usize, total: usize) -> f64 {
    let total = total.max(1) as f64;
    let warmup_steps = (total * pct).max(1.0);
    let position = step as f64;
    if position < warmup_steps {
        cosine_between(start, middle, position / warmup_steps)
    } else {
        let remaining = (total - warmup_steps).max(1.0);
        cosine_between(middle, end, (position - warmup_steps) / remaining)
    }
}

/// The factor on every group's rate at step `step` (0-based) of `total`.
pub fn factor(stage: &Stage, step: usize, total: usize) -> f64 {
    match stage.schedule {
        ScheduleKind::Constant => 1.0,
        ScheduleKind::Cosine => cosine_between(1.0, 0.0, step as f64 / total.max(1) as f64),
        ScheduleKind::Onecycle => onecycle_factor(&stage.onecycle, step, total),
    }
}

/// fastai's `fit_one_cycle` rate: `lr / div` → `lr` → `lr / final_div`.
pub fn onecycle_factor(onecycle: &OneCycle, step: usize, total: usize) -> f64 {
    combined_cosine(onecycle.pct, (1.0 / onecycle.div, 1.0, 1.0 / onecycle.final_div), step, total)
}

/// AdamW's β₁ at step `step`: under one-cycle it follows `moms` against the rate, as fastai's
/// `fit_one_cycle` does (overriding `betas`); other schedules keep the optimizer's β₁.
pub fn momentum(stage: &Stage, step: usize, total: usize) -> f64 {
    match stage.schedule {
        ScheduleKind::Onecycle => combined_cosine(stage.onecycle.pct, stage.onecycle.moms, step, total),
        ScheduleKind::Constant | ScheduleKind::Cosine => stage.optimizer.beta1,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn onecycle_rises_to_the_peak_then_falls() {
        let onecycle = OneCycle::default();
        let total = 100;
        let factors: Vec<f64> = (0..total).map(|step| onecycle_factor(&onecycle, step, total)).collect();
        assert!((factors[0] - 1.0 / 25.0).abs() < 1e-9);
        let peak = factors.iter().cloned().fold(f64::MIN, f64::max);
        let peak_step = factors.iter().position(|f| *f == peak).unwrap();
        assert!((peak - 1.0).abs() < 1e-3 && (24..=26).contains(&peak_step), "peak {peak} at {peak_step}");
        assert!(factors[99] < 1e-3);
    }

    #[test]
    fn onecycle_parameters_shape_the_curve() {
        let onecycle = OneCycle { pct: 0.5, div: 10.0, final_div: 100.0, moms: (0.9, 0.8, 0.9) };
        assert!((onecycle_factor(&onecycle, 0, 10) - 0.1).abs() < 1e-12);
        assert!((onecycle_factor(&onecycle, 5, 10) - 1.0).abs() < 1e-12);
        // fastai's final rate is lr / div_final, reached at the end of the last step.
        assert!((onecycle_factor(&onecycle, 10, 10) - 0.01).abs() < 1e-12);
    }

    #[test]
    fn momentum_moves_against_the_rate_like_fastai() {
        // fastai: combined_cos(0.25, 0.95, 0.85, 0.95); at pct 0 → 0.95, at 0.25 → 0.85, at 1 → 0.95,
        // and at 0.125 the cosine midpoint 0.90.
        let onecycle = OneCycle::default();
        let curve = |step| combined_cosine(onecycle.pct, onecycle.moms, step, 80);
        assert!((curve(0) - 0.95).abs() < 1e-12);
        assert!((curve(10) - 0.90).abs() < 1e-12);
        assert!((curve(20) - 0.85).abs() < 1e-12);
        assert!((curve(50) - 0.90).abs() < 1e-12);
        assert!((curve(80) - 0.95).abs() < 1e-12);
    }

    #[test]
    fn cosine_and_constant() {
        assert_eq!(cosine_between(1.0, 0.0, 0.0), 1.0);
        assert!((cosine_between(1.0, 0.0, 0.5) - 0.5).abs() < 1e-12);
    }
}
