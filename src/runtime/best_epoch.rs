//! `keep best` and early stopping: which epoch of a stage was best so far, and how long ago.

use serde::{Deserialize, Serialize};

use crate::check::recipe::{Metric, Stage};

/// The best epoch of the running stage, kept in checkpoints so that a resumed run restores and
/// stops exactly where the original would have.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BestEpoch {
    /// 1-based epoch within the stage; `None` before the first evaluation.
    pub epoch: Option<u32>,
    pub value: f64,
    pub epochs_without_improvement: u32,
}

/// What the stage does after an epoch was measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Verdict {
    /// This epoch is the best so far: its weights are the ones `keep best` would restore.
    pub improved: bool,
    /// Early stopping: the stage ends after this epoch.
    pub stop: bool,
}

/// The metric a stage watches: early stopping's (which follows `keep best`'s), else `keep best`'s.
pub fn watched_metric(stage: &Stage) -> Option<(Metric, f64)> {
    match (stage.early_stop, stage.keep_best) {
        (Some(stop), _) => Some((stop.metric, stop.min_delta)),
        (None, Some(metric)) => Some((metric, 0.0)),
        (None, None) => None,
    }
}

impl BestEpoch {
    /// Record epoch `epoch`'s valid accuracy and loss.
    pub fn observe(&mut self, stage: &Stage, epoch: u32, valid_accuracy: f64, valid_loss: f64) -> Verdict {
        let Some((metric, min_delta)) = watched_metric(stage) else {
            return Verdict { improved: false, stop: false };
        };
        let value = match metric {
            Metric::ValidAccuracy => valid_accuracy,
            Metric::ValidLoss => valid_loss,
        };
        // A NaN metric (no valid images, a diverged loss) never counts as an improvement.
        let improved = !value.is_nan() && (self.epoch.is_none() || metric.improves(value, self.value, min_delta));
        if improved {
            *self = BestEpoch { epoch: Some(epoch), value, epochs_without_improvement: 0 };
        } else {
            self.epochs_without_improvement += 1;
        }
        let stop = stage.early_stop.is_some_and(|stop| self.epochs_without_improvement >= stop.patience) && epoch < stage.epochs;
        Verdict { improved, stop }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::{NoWorld, check_source};

    fn stage(statements: &str) -> Stage {
        let text = format!(
            "backbone resnet_small from none\ndata {{ train \"x\" }}\nstage s {{ train all epochs 10 {statements} }}\n"
        );
        let (recipe, diagnostics) = check_source(&text, "t", &NoWorld);
        assert!(diagnostics.iter().all(|d| !d.is_error()), "{diagnostics:#?}");
        recipe.unwrap().stages.remove(0)
    }

    #[test]
    fn keep_best_follows_accuracy_and_early_stopping_counts_patience() {
        let stage = stage("keep best valid_accuracy stop after 2 epochs without improvement min_delta 0.01");
        let mut best = BestEpoch::default();
        let verdicts: Vec<Verdict> = [(1, 0.50), (2, 0.60), (3, 0.605), (4, 0.58)]
            .iter()
            .map(|(epoch, accuracy)| best.observe(&stage, *epoch, *accuracy, 1.0))
            .collect();
        assert!(verdicts[0].improved && verdicts[1].improved);
        assert!(!verdicts[2].improved, "0.605 is within min_delta of 0.60");
        assert!(!verdicts[2].stop && verdicts[3].stop, "two epochs without improvement stop the stage");
        assert_eq!(best.epoch, Some(2));
    }

    #[test]
    fn early_stopping_alone_watches_the_valid_loss() {
        let stage = stage("stop after 1 epochs without improvement");
        let mut best = BestEpoch::default();
        assert!(best.observe(&stage, 1, 0.1, 2.0).improved);
        assert!(best.observe(&stage, 2, 0.0, 1.5).improved, "lower loss improves even when accuracy drops");
        let verdict = best.observe(&stage, 3, 0.9, 1.6);
        assert!(!verdict.improved && verdict.stop);
    }

    #[test]
    fn the_last_epoch_never_stops_early_and_nan_never_improves() {
        let stage = stage("keep best valid_loss");
        let mut best = BestEpoch::default();
        assert!(!best.observe(&stage, 1, 0.5, f64::NAN).improved);
        assert!(best.observe(&stage, 2, 0.5, 3.0).improved);
        assert!(!best.observe(&stage, 10, 0.5, 4.0).stop);
    }
}
