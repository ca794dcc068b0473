//! What `tlrun probe` recommends: the cut with the highest LogME, and what the trade advises when
//! the target images are far from the pretraining ones (cut earlier, unfreeze more, do not resize
//! below the pretraining size). A heuristic reading of the scores, stated as such in the docs.

/// One scored cut, shallow to deep.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredCut {
    pub after: String,
    /// Whether a recipe can say `cut after` it.
    pub cut_point: bool,
    pub logme: f64,
    pub probe_accuracy: f64,
}

/// How far the target images are from the pretraining images.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Shift {
    /// Largest per-channel difference of pixel means (pixels in [0, 1]).
    pub channel_mean_gap: f64,
    /// Largest per-channel ratio of pixel standard deviations, ≥ 1 (the larger over the smaller).
    pub channel_std_ratio: f64,
    /// Fréchet distance of the deepest features over the trace of the pretraining covariance,
    /// when the zoo card keeps its statistics: about 0 for the same images, above 1 when the means
    /// are further apart than the features spread.
    pub relative_frechet: Option<f64>,
}

impl Shift {
    /// Pixel statistics far from the backbone's: a mean 0.15 away, or a spread 1.5x wider or narrower.
    pub fn pixels_far(&self) -> bool {
        self.channel_mean_gap > 0.15 || self.channel_std_ratio > 1.5
    }

    pub fn features_far(&self) -> bool {
        self.relative_frechet.is_some_and(|relative| relative > 1.0)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Advice {
    pub cut_after: String,
    /// Recipe lines and comments, ready to paste.
    pub lines: Vec<String>,
}

/// The advised fine-tune's epochs, unless that leaves it fewer optimizer steps than
/// [`FINETUNE_STEPS`].
const FINETUNE_EPOCHS: usize = 6;

/// The fewest optimizer steps the advised fine-tune takes. On the few-shot digits (50 images at
/// batch 32: 2 steps an epoch) the advice with 6 epochs (12 steps) gave 82–84% over five seeds and
/// with 16 (32 steps) 91–93%, on both backbones and on the shifted target (benches/fewshot/README.md,
/// measured on a dev half, confirmed on a test half).
const FINETUNE_STEPS: usize = 32;

/// Epochs that give the fine-tune at least [`FINETUNE_STEPS`] steps; `steps_per_epoch` 0 (no
/// images) keeps the default.
fn finetune_epochs(steps_per_epoch: usize) -> usize {
    if steps_per_epoch == 0 { FINETUNE_EPOCHS } else { FINETUNE_EPOCHS.max(FINETUNE_STEPS.div_ceil(steps_per_epoch)) }
}

/// The recommended cut among the cut points (highest LogME; the deeper one on a tie), with the
/// freezing advice that goes with it and a fine-tune long enough in optimizer steps. `None` when
/// nothing was scored.
pub fn advise(cuts: &[ScoredCut], recipe_cut: &str, shift: Shift, steps_per_epoch: usize) -> Option<Advice> {
    let points: Vec<&ScoredCut> = cuts.iter().filter(|cut| cut.cut_point && cut.logme.is_finite()).collect();
    let best = points.iter().copied().reduce(|best, cut| if cut.logme >= best.logme { cut } else { best })?;
    let deepest = points.last()?;
    let mut lines = vec![format!("cut after {}", best.after)];
    if best.after == recipe_cut {
        lines.push("# the recipe already cuts here".to_string());
    }
    if best.after != deepest.after {
        lines.push(format!(
            "# the features after {} fit these labels better than the deeper ones: what comes after is specialised to the pretraining task (Yosinski et al. 2014)",
            best.after
        ));
    }
    let far = shift.pixels_far() || shift.features_far();
    let epochs = finetune_epochs(steps_per_epoch);
    lines.push("stage warmup   { train head  epochs 3  lr 1e-2 }   # the new head first, the backbone frozen".to_string());
    if far {
        lines.push(format!("stage finetune {{ train all  epochs {epochs}  lr 1e-3 spread 100 }}"));
        lines.push("# the images are far from the pretraining images: unfreeze everything, early layers slowest, and keep the pretraining input size or larger".to_string());
    } else {
        // The default groups are named after the stages; the stem's layers form the group `stem`.
        let group = if best.after.starts_with("layer") { best.after.as_str() } else { "stem" };
        lines.push(format!("stage finetune {{ train from {group}  epochs {epochs}  lr 1e-3 spread 10 }}"));
        lines.push(format!(
            "# the images resemble the pretraining images: fine-tune only the last kept stage and the head (fastai's freeze_to); the groups before {} stay frozen",
            best.after
        ));
    }
    if epochs > FINETUNE_EPOCHS {
        lines.push(format!(
            "# {steps_per_epoch} optimizer steps an epoch: {epochs} epochs give the fine-tune {} steps; on few images a shorter one loses points",
            epochs * steps_per_epoch
        ));
    }
    Some(Advice { cut_after: best.after.clone(), lines })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cut(after: &str, logme: f64) -> ScoredCut {
        ScoredCut { after: after.to_string(), cut_point: !after.contains('.'), logme, probe_accuracy: 0.5 }
    }

    #[test]
    fn recommends_the_highest_evidence_among_cut_points() {
        let cuts = [cut("maxpool", -1.0), cut("layer1", -0.8), cut("layer2.0", 0.9), cut("layer2", -0.5), cut("layer3", -0.6)];
        let advice = advise(&cuts, "layer3", Shift::default(), 100).unwrap();
        assert_eq!(advice.cut_after, "layer2", "blocks are shown but not recommended");
        assert!(advice.lines[1].contains("specialised"));
        let far = advise(&cuts, "layer3", Shift { channel_mean_gap: 0.3, ..Shift::default() }, 100).unwrap();
        assert!(far.lines.iter().any(|line| line.contains("unfreeze everything")));
        assert!(advice.lines.iter().any(|line| line.starts_with("stage finetune { train from layer2  epochs 6 ")), "{:?}", advice.lines);
        assert!(advise(&[], "layer3", Shift::default(), 100).is_none());
    }

    /// 50 images at batch 32 are 2 steps an epoch: 16 epochs make the 32 steps; plenty of steps
    /// keep 6 epochs, and so does an empty data set.
    #[test]
    fn sizes_the_finetune_in_optimizer_steps() {
        let cuts = [cut("layer1", -0.8), cut("layer2", -0.5)];
        let few = advise(&cuts, "layer2", Shift::default(), 2).unwrap();
        assert!(few.lines.iter().any(|line| line.starts_with("stage finetune { train from layer2  epochs 16 ")), "{:?}", few.lines);
        assert!(few.lines.iter().any(|line| line.starts_with("# 2 optimizer steps an epoch: 16 epochs give the fine-tune 32 steps")), "{:?}", few.lines);
        let far = advise(&cuts, "layer2", Shift { channel_mean_gap: 0.3, ..Shift::default() }, 3).unwrap();
        assert!(far.lines.iter().any(|line| line.starts_with("stage finetune { train all  epochs 11 ")), "{:?}", far.lines);
        for steps in [6, 100, 0] {
            let lines = advise(&cuts, "layer2", Shift::default(), steps).unwrap().lines;
            assert!(lines.iter().any(|line| line.contains("epochs 6 ")) && !lines.iter().any(|line| line.contains("optimizer steps an epoch")), "{steps}: {lines:?}");
        }
    }
}
