//! Warnings for the traps practitioners fall into. Each one is legal, and often a mistake.

use super::groups::CheckedGroups;
use super::recipe::{Backbone, Data, Recipe};
use super::stages::CheckedStage;
use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::ast::{DataKind, DataStatement, Item};

/// How far normalisation stats may differ from the backbone's before it matters.
const STATS_TOLERANCE: f64 = 1e-3;

pub fn check(
    backbone: &Backbone,
    data: &Data,
    data_block: Option<(&Item, &[DataStatement])>,
    groups: &CheckedGroups,
    stages: &[CheckedStage],
    diagnostics: &mut Vec<Diagnostic>,
) {
    if !backbone.is_pretrained() {
        return;
    }
    let statements = data_block.map_or(&[][..], |(_, statements)| statements);
    stats_mismatch(backbone, data, statements, diagnostics);
    domain_shift(backbone, data, statements, diagnostics);

    // A group with any backbone layer holds pretrained weights, even if it also holds the head.
    let is_backbone_group: Vec<bool> =
        groups.groups.iter().map(|group| group.layers.iter().any(|layer| layer != super::groups::HEAD)).collect();
    let mut head_warmed_up = false;
    let mut warned_unfreeze = false;
    for checked in stages {
        let stage = &checked.stage;
        let trains_backbone = stage.trained.iter().zip(&is_backbone_group).any(|(trained, backbone)| *trained && *backbone);
        let anchor = checked.train_span.unwrap_or(checked.name_span);

        if trains_backbone && !head_warmed_up && !warned_unfreeze {
            warned_unfreeze = true;
            diagnostics.push(
                Diagnostic::new(
                    Code::UnfreezeBeforeHeadWarmup,
                    format!("stage `{}` unfreezes pretrained layers before the new head has trained", stage.name),
                )
                .at(anchor, "pretrained groups train here")
                .with_help(format!(
                    "add a head-only stage first ({} for an epoch or two): a random head sends large, noisy gradients into pretrained weights",
                    groups.train_head_alone()
                )),
            );
        }
        if !trains_backbone && stage.trained.iter().any(|trained| *trained) {
            head_warmed_up = true;
        }

        // When an error already says the rates are wrong, a warning about them would follow from it.
        if trains_backbone && !checked.rates_unknown {
            full_rate_unfreeze(checked, &is_backbone_group, diagnostics);
        }

        let pretraining_size = backbone.stats.input_size;
        // Head-only stages cannot damage frozen filters; only stages that train them can.
        if !trains_backbone {
            continue;
        }
        if let Some(smallest) = stage.sizes.iter().copied().min().filter(|size| *size < pretraining_size) {
            diagnostics.push(
                Diagnostic::new(
                    Code::ResizeBelowPretraining,
                    format!("stage `{}` trains at {smallest}px, below the {pretraining_size}px the backbone was pretrained at", stage.name),
                )
                .at(checked.resize_span.unwrap_or(checked.name_span), format!("{smallest}px"))
                .with_help(format!(
                    "when your images resemble the pretraining data, small images damage the pretrained filters: start at {pretraining_size}px or more"
                )),
            );
        }
    }
}

fn full_rate_unfreeze(checked: &CheckedStage, is_backbone_group: &[bool], diagnostics: &mut Vec<Diagnostic>) {
    let stage = &checked.stage;
    let anchor = checked.lr_span.or(checked.train_span).unwrap_or(checked.name_span);
    let trained: Vec<usize> = (0..stage.trained.len()).filter(|index| stage.trained[*index]).collect();
    let top_rate = trained.iter().map(|index| stage.multipliers[*index]).fold(f64::MIN, f64::max);
    let backbone_at_full_rate = trained
        .iter()
        .filter(|index| is_backbone_group[**index])
        .all(|index| stage.multipliers[*index] >= top_rate);
    if backbone_at_full_rate {
        diagnostics.push(
            Diagnostic::new(
                Code::FullRateUnfreeze,
                format!("stage `{}` trains pretrained layers at the full learning rate", stage.name),
            )
            .at(anchor, "one rate for every group")
            .with_help("early layers hold general features: give them less, e.g. `lr 1e-3 spread 100` (fastai's slice(lr/100, lr))"),
        );
        return;
    }
    // Multipliers that grow toward the early layers invert discriminative learning rates.
    let inverted = trained.iter().enumerate().any(|(position, &early)| {
        is_backbone_group[early]
            && trained[position + 1..].iter().any(|&late| stage.multipliers[early] > stage.multipliers[late])
    });
    if inverted {
        diagnostics.push(
            Diagnostic::new(
                Code::FullRateUnfreeze,
                format!("stage `{}` gives early layers a higher rate than later ones", stage.name),
            )
            .at(anchor, "rates shrink toward the head")
            .with_help("discriminative rates grow from the stem to the head: early layers should move least"),
        );
    }
}

fn stats_mismatch(backbone: &Backbone, data: &Data, statements: &[DataStatement], diagnostics: &mut Vec<Diagnostic>) {
    let differs = |ours: &[f64], theirs: &[f64]| {
        ours.len() != theirs.len() || ours.iter().zip(theirs).any(|(a, b)| (a - b).abs() > STATS_TOLERANCE)
    };
    if !differs(&data.mean, &backbone.stats.mean) && !differs(&data.std, &backbone.stats.std) {
        return;
    }
    let Some(statement) = statements.iter().find(|statement| matches!(statement.kind, DataKind::Normalize(_))) else {
        return;
    };
    let show = |values: &[f64]| values.iter().map(|value| format!("{value}")).collect::<Vec<_>>().join(" ");
    diagnostics.push(
        Diagnostic::new(Code::StatsMismatch, "normalisation differs from the backbone's pretraining statistics")
            .at(statement.span, "not the backbone's mean/std")
            .with_help(format!(
                "the pretrained weights expect mean {} std {}: write `normalize backbone` (the default)",
                show(&backbone.stats.mean),
                show(&backbone.stats.std)
            )),
    );
}

fn domain_shift(backbone: &Backbone, data: &Data, statements: &[DataStatement], diagnostics: &mut Vec<Diagnostic>) {
    if data.channels == backbone.stats.channels {
        return;
    }
    let Some(statement) = statements.iter().find(|statement| matches!(statement.kind, DataKind::Channels(..))) else {
        return;
    };
    let describe = |channels: u32| if channels == 1 { "grayscale" } else { "colour" };
    diagnostics.push(
        Diagnostic::new(
            Code::DomainShift,
            format!(
                "the backbone was pretrained on {} images, this data is {}",
                describe(backbone.stats.channels),
                describe(data.channels)
            ),
        )
        .at(statement.span, "different from the pretraining data")
        .with_help("features that rely on colour will not transfer: expect to fine-tune more layers, with more data"),
    );
}

/// Fewer optimizer steps than this in an epoch: BatchNorm statistics and the schedule see too little.
const FEW_STEPS: usize = 4;

/// TL5006: an epoch of so few steps that the schedule and BatchNorm's statistics barely move.
/// Reported once, at the first stage concerned, anchored at `batch` when the recipe writes one.
pub fn few_steps(data: &Data, data_block: Option<(&Item, &[DataStatement])>, stages: &[CheckedStage], diagnostics: &mut Vec<Diagnostic>) {
    if data.batch_rejected {
        return;
    }
    let Some(images) = data.train_images.filter(|images| *images > 0) else { return };
    let Some(checked) = stages.iter().find(|checked| {
        crate::data_counts::steps_per_epoch(images, data.batch, checked.stage.accumulate) < FEW_STEPS
    }) else {
        return;
    };
    let stage = &checked.stage;
    let steps = crate::data_counts::steps_per_epoch(images, data.batch, stage.accumulate);
    let statements = data_block.map_or(&[][..], |(_, statements)| statements);
    let batch_span = statements.iter().find(|statement| matches!(statement.kind, DataKind::Batch(_))).map(|statement| statement.span);
    let anchor = checked.accumulate_span.or(batch_span).unwrap_or(checked.name_span);
    let plural = |count: usize| if count == 1 { "" } else { "s" };
    let accumulation = if stage.accumulate > 1 { format!(", accumulating {}", stage.accumulate) } else { String::new() };
    let advice = match batch_reaching(images, stage.accumulate, FEW_STEPS) {
        Some(batch) => format!("try `batch {batch}` ({} steps)", crate::data_counts::steps_per_epoch(images, batch, stage.accumulate)),
        None if stage.accumulate > 1 => format!(
            "no batch of 2 or more reaches {FEW_STEPS} steps while accumulating {}: accumulate less, or add images",
            stage.accumulate
        ),
        None => format!("no batch of 2 or more reaches {FEW_STEPS} steps with {images} images: add images, or accept fewer steps"),
    };
    diagnostics.push(
        Diagnostic::new(Code::FewStepsPerEpoch, format!("stage `{}` takes only {steps} optimizer step{} per epoch", stage.name, plural(steps)))
            .at(anchor, format!("{steps} step{} per epoch", plural(steps)))
            .with_help(format!("{images} images at batch {}{accumulation}: {steps} step{} per epoch; {advice}", data.batch, plural(steps))),
    );
}

/// The largest batch of at least 2 images (BatchNorm needs two) that gives `goal` optimizer steps
/// per epoch, counted as a run counts them; `None` when even batches of 2 fall short.
fn batch_reaching(images: usize, accumulate: usize, goal: usize) -> Option<usize> {
    // `needed` batches of `b` images need ceil(images / b) >= needed, so b <= (images - 1) / (needed - 1):
    // the search starts there, not at `images`.
    let needed = (goal - 1) * accumulate.max(1) + 1;
    let largest = if needed > 1 { images.saturating_sub(1) / (needed - 1) } else { images };
    (2..=largest.max(2))
        .rev()
        .find(|batch| crate::data_counts::steps_per_epoch(images, *batch, accumulate) >= goal)
}

/// TL2011: BatchNorm trained on batches of one image. It normalises each channel over the batch,
/// so one image gives zeros and the layer outputs its bias: the network trains on a constant
/// (PyTorch raises an error). Known here when the recipe writes `batch 1` or the training split
/// holds one image; the runtime checks the batches it forms (after `corrupt skip`, say).
pub fn batch_of_one(recipe: &Recipe, data_block: Option<(&Item, &[DataStatement])>, diagnostics: &mut Vec<Diagnostic>) {
    let data = &recipe.data;
    let one_image = data.train_images == Some(1);
    if data.batch_rejected || !(data.batch == 1 || one_image) {
        return;
    }
    let Some(stage) = recipe.stages.iter().find(|stage| recipe.stage_trains_batchnorm(stage)) else { return };
    let statements = data_block.map_or(&[][..], |(_, statements)| statements);
    let (kind_wanted, why): (fn(&DataKind) -> bool, String) = if one_image {
        (|kind| matches!(kind, DataKind::Train(_)), "the training split holds a single image".to_string())
    } else {
        (|kind| matches!(kind, DataKind::Batch(_)), "`batch 1`".to_string())
    };
    let Some(anchor) = statements.iter().find(|statement| kind_wanted(&statement.kind)).map(|statement| statement.span) else { return };
    diagnostics.push(
        Diagnostic::new(Code::BatchOfOne, format!("stage `{}` trains BatchNorm on batches of one image", stage.name))
            .at(anchor, format!("{why}: one image per batch"))
            .with_help(if one_image {
                "add training images (BatchNorm needs at least two per batch), or train only groups without BatchNorm".to_string()
            } else {
                "write `batch 2` or more: BatchNorm normalises over the batch, so one image gives its bias; `accumulate` does not help, since BatchNorm sees one batch at a time".to_string()
            }),
    );
}

/// Fewer training images per class than this is few-shot: one run is one draw of the seed.
const FEW_SHOT_PER_CLASS: usize = 20;

/// TL5007: a few-shot recipe that is not swept over seeds. On few-shot data the same recipe moves
/// by 9–15 points from seed to seed, so one run cannot say whether it is better than another.
pub fn few_shot_unswept(data: &Data, data_block: Option<(&Item, &[DataStatement])>, sweeps_seed: bool, diagnostics: &mut Vec<Diagnostic>) {
    let (Some(images), Some(classes)) = (data.train_images, data.classes.as_ref()) else { return };
    if sweeps_seed || classes.is_empty() {
        return;
    }
    let per_class = images / classes.len();
    if per_class >= FEW_SHOT_PER_CLASS {
        return;
    }
    let statements = data_block.map_or(&[][..], |(_, statements)| statements);
    let Some(train) = statements.iter().find(|statement| matches!(statement.kind, DataKind::Train(_))) else { return };
    diagnostics.push(
        Diagnostic::new(Code::FewShotUnswept, format!("about {per_class} training images per class, and one seed"))
            .at(train.keyword, format!("{images} images, {} classes", classes.len()))
            .with_help("few-shot runs move by 9–15 points from seed to seed: add `sweep { seed 0 1 2 3 4 }` and compare means with their intervals (docs/scale.md)"),
    );
}

#[cfg(test)]
mod tests {
    use super::batch_reaching;
    use crate::data_counts::steps_per_epoch;

    #[test]
    fn the_suggested_batch_reaches_the_goal_and_is_the_largest_that_does() {
        for images in 1..200 {
            for accumulate in 1..4 {
                let suggested = batch_reaching(images, accumulate, 4);
                let brute = (2..=images.max(2)).rev().find(|batch| steps_per_epoch(images, *batch, accumulate) >= 4);
                assert_eq!(suggested, brute, "{images} images, accumulate {accumulate}");
            }
        }
        assert_eq!(batch_reaching(3, 1, 4), None);
        assert_eq!(batch_reaching(40, 1, 4), Some(12));
        assert_eq!(batch_reaching(50, 1, 4), Some(16));
    }
}
