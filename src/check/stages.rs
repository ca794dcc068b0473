use super::groups::CheckedGroups;
use super::recipe::{BatchNormMode, Data, EarlyStop, Metric, OneCycle, Optimizer, OptimizerKind, ScheduleKind, Stage};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::{Span, Spanned};
use crate::syntax::ast::{Name, OneCycleParam, OptimizerParam, StageDecl, StageKind, TrainTarget};

pub const DEFAULT_LR: f64 = 1e-3;
use crate::limits::{MAX_ACCUMULATE, MAX_EPOCHS, MAX_IMAGE_SIDE};

/// A checked stage with the spans that the trap warnings point at.
pub struct CheckedStage {
    pub stage: Stage,
    pub name_span: Span,
    pub train_span: Option<Span>,
    pub lr_span: Option<Span>,
    pub resize_span: Option<Span>,
    pub accumulate_span: Option<Span>,
    /// The per-group rates could not be worked out (an error said why): warnings about rates
    /// would follow from that error, not from the recipe.
    pub rates_unknown: bool,
}

pub fn check(declarations: &[&StageDecl], groups: &CheckedGroups, data: &Data, diagnostics: &mut Vec<Diagnostic>) -> Vec<CheckedStage> {
    let mut checked: Vec<CheckedStage> = Vec::new();
    // Where each name was first defined: a map, so a recipe of many stages checks in linear time.
    let mut first_defined: std::collections::HashMap<&str, Span> = std::collections::HashMap::new();
    for declaration in declarations {
        if let Some(first) = first_defined.get(declaration.name.value.as_str()) {
            diagnostics.push(
                Diagnostic::new(Code::DuplicateName, format!("stage `{}` is defined twice", declaration.name.value))
                    .at(declaration.name.span, "defined again here")
                    .with_related(*first, "first defined here")
                    .with_help("stages run in order and are reported by name: give each its own"),
            );
        } else {
            first_defined.insert(&declaration.name.value, declaration.name.span);
        }
        checked.push(check_stage(declaration, groups, data, diagnostics));
    }
    checked
}

fn check_stage(declaration: &StageDecl, groups: &CheckedGroups, data: &Data, diagnostics: &mut Vec<Diagnostic>) -> CheckedStage {
    let group_count = groups.groups.len();
    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    let mut train: Option<(Vec<bool>, Span, Vec<(usize, Span)>)> = None;
    let mut freeze: Option<Vec<(usize, Span)>> = None;
    let mut epochs = 1u32;
    // A rejected epoch count leaves `epochs` at 1; checks that compare with it stay silent.
    let mut epochs_rejected = false;
    let mut base_lr = DEFAULT_LR;
    let mut spread: Option<Spanned<f64>> = None;
    let mut multipliers: Option<&Vec<(Name, Spanned<f64>)>> = None;
    let mut optimizer = Optimizer::defaults(OptimizerKind::Adamw);
    let mut schedule = ScheduleKind::Onecycle;
    let mut onecycle = OneCycle::default();
    let mut accumulate = 1usize;
    let mut accumulate_span = None;
    let mut keep_best: Option<Metric> = None;
    let mut stop_after: Option<(u32, f64)> = None;
    let mut resize: Option<(&Vec<Spanned<i64>>, &Vec<Spanned<i64>>, Span)> = None;
    let mut batchnorm = BatchNormMode::Frozen;
    let mut lr_span = None;
    let mut train_span = None;
    // Spread and multipliers can come from `lr … spread …` or their own statements: the first counts.
    let mut spread_seen: Vec<Span> = Vec::new();
    let mut multipliers_seen: Vec<Span> = Vec::new();

    for statement in &declaration.statements {
        let keyword = keyword_of(&statement.kind);
        let tracked_separately = matches!(statement.kind, StageKind::Spread(_) | StageKind::Multipliers(_));
        if let Some((_, first)) = seen.iter().find(|(word, _)| *word == keyword && !tracked_separately) {
            diagnostics.push(super::items::duplicate(keyword, statement.keyword, *first));
            continue;
        }
        seen.push((keyword, statement.keyword));
        match &statement.kind {
            StageKind::Train(target) => {
                train_span = Some(statement.span);
                let mut trained = vec![false; group_count];
                let mut named = Vec::new();
                match target {
                    TrainTarget::All => trained.fill(true),
                    TrainTarget::From(name) => {
                        if let Some(index) = resolve(name, groups, diagnostics) {
                            trained[index..].fill(true);
                        }
                    }
                    TrainTarget::Groups(names) => {
                        for name in names {
                            if let Some(index) = resolve(name, groups, diagnostics) {
                                trained[index] = true;
                                named.push((index, name.span));
                            }
                        }
                    }
                }
                train = Some((trained, statement.span, named));
            }
            StageKind::Freeze(names) => {
                freeze = Some(names.iter().filter_map(|name| resolve(name, groups, diagnostics).map(|i| (i, name.span))).collect());
            }
            // Judged on the number as written: 2^32 and more must not wrap to a small count.
            StageKind::Epochs(count) if count.value < 1 => {
                epochs_rejected = true;
                diagnostics.push(
                    Diagnostic::new(Code::ZeroEpochs, format!("a stage trains for at least one epoch, not {}", count.value))
                        .at(count.span, "no training would happen")
                        .with_help("write `epochs 1` or more, or remove the stage"),
                )
            }
            StageKind::Epochs(count) => match u32::try_from(count.value).ok().filter(|count| *count <= MAX_EPOCHS) {
                Some(count) => epochs = count,
                None => {
                    epochs_rejected = true;
                    diagnostics.push(
                    Diagnostic::new(Code::ValueOutOfRange, format!("a stage trains for at most {MAX_EPOCHS} epochs, not {}", count.value))
                        // On the number: a number too large for 64 bits is reported there once already.
                        .at(count.span, format!("over the limit of {MAX_EPOCHS}"))
                        .with_help("split the training into several stages, or train fewer epochs"),
                    )
                }
            },
            StageKind::Lr { rate, spread: lr_spread, multipliers: lr_multipliers } => {
                lr_span = Some(statement.span);
                if positive_rate(rate, "a learning rate", diagnostics) {
                    base_lr = rate.value;
                }
                if let Some(value) = lr_spread {
                    spread_seen.push(value.span);
                    spread.get_or_insert_with(|| value.clone());
                }
                if let Some(map) = lr_multipliers {
                    multipliers_seen.push(statement.span);
                    multipliers.get_or_insert(map);
                }
            }
            StageKind::Spread(value) => {
                spread_seen.push(statement.span);
                spread.get_or_insert_with(|| value.clone());
            }
            StageKind::Multipliers(map) => {
                multipliers_seen.push(statement.span);
                multipliers.get_or_insert(map);
            }
            StageKind::Optimizer { kind, params } => optimizer = check_optimizer(*kind, params, diagnostics),
            StageKind::Schedule(kind, params) => {
                schedule = *kind;
                onecycle = check_onecycle(params, diagnostics);
            }
            StageKind::Accumulate(count) => {
                accumulate_span = Some(statement.span);
                match usize::try_from(count.value).ok().filter(|count| (1..=MAX_ACCUMULATE).contains(count)) {
                    Some(count) => accumulate = count,
                    None => diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("accumulate takes 1..{MAX_ACCUMULATE} batches per step, not {}", count.value))
                            .at(count.span, "not a batch count")
                            .with_help("`accumulate 2` steps once every two batches: the update of a batch twice as large"),
                    ),
                }
            }
            StageKind::KeepBest(metric) => {
                keep_best = Some(metric.unwrap_or(Metric::ValidAccuracy));
                needs_every_epoch(statement.span, "`keep best`", data, diagnostics);
            }
            StageKind::StopAfter { patience, min_delta } => {
                needs_every_epoch(statement.span, "early stopping", data, diagnostics);
                let patience_value = match u32::try_from(patience.value).ok().filter(|count| (1..=MAX_EPOCHS).contains(count)) {
                    Some(count) => count,
                    None => {
                        diagnostics.push(
                            Diagnostic::new(Code::ValueOutOfRange, format!("stop after 1..{MAX_EPOCHS} epochs without improvement, not {}", patience.value))
                                .at(patience.span, "not an epoch count")
                                .with_help("e.g. `stop after 3 epochs without improvement`"),
                        );
                        1
                    }
                };
                let delta = match min_delta {
                    Some(delta) if delta.value >= 0.0 => delta.value,
                    Some(delta) => {
                        diagnostics.push(
                            Diagnostic::new(Code::ValueOutOfRange, format!("min_delta cannot be negative ({})", delta.value))
                                .at(delta.span, "negative")
                                .with_help("e.g. `min_delta 0.001`: smaller changes do not count as improvement"),
                        );
                        0.0
                    }
                    None => 0.0,
                };
                stop_after = Some((patience_value, delta));
            }
            StageKind::Resize { sizes, starts } => resize = Some((sizes, starts, statement.span)),
            StageKind::BatchNorm(mode) => batchnorm = *mode,
        }
    }

    for (keyword, seen) in [("spread", &spread_seen), ("multipliers", &multipliers_seen)] {
        for again in seen.iter().skip(1) {
            diagnostics.push(super::items::duplicate(keyword, *again, seen[0]));
        }
    }
    let trained = resolve_trained(declaration, groups, train, freeze, diagnostics);
    let before_rates = diagnostics.len();
    let per_group = match (&spread, multipliers) {
        (Some(spread), Some(map)) => {
            diagnostics.push(
                Diagnostic::new(Code::ConflictingTraining, "a stage takes either `spread` or explicit multipliers, not both")
                    .at(spread.span, "spread here")
                    .with_related(map.first().map_or(spread.span, |(name, _)| name.span), "multipliers here")
                    .with_help("`spread 100` is shorthand for multipliers from 1/100 up to 1: keep one"),
            );
            vec![1.0; group_count]
        }
        (Some(spread), None) => {
            if positive_rate(spread, "a spread", diagnostics) {
                spread_multipliers(spread.value, group_count)
            } else {
                vec![1.0; group_count]
            }
        }
        (None, Some(map)) => explicit_multipliers(map, groups, diagnostics),
        (None, None) => vec![1.0; group_count],
    };
    let rates_unknown = diagnostics[before_rates..].iter().any(Diagnostic::is_error);
    let sizes = match resize {
        Some((sizes, starts, span)) => check_resize(sizes, starts, span, (!epochs_rejected).then_some(epochs), data.size, diagnostics),
        None => vec![data.size; epochs as usize],
    };

    CheckedStage {
        stage: Stage {
            name: declaration.name.value.clone(),
            epochs,
            base_lr,
            trained,
            multipliers: per_group,
            optimizer,
            schedule,
            onecycle,
            sizes,
            batchnorm,
            accumulate,
            keep_best,
            // Early stopping watches what `keep best` keeps; alone it watches the valid loss (Keras).
            early_stop: stop_after.map(|(patience, min_delta)| EarlyStop {
                patience,
                min_delta,
                metric: keep_best.unwrap_or(Metric::ValidLoss),
            }),
        },
        name_span: declaration.name.span,
        train_span,
        lr_span,
        resize_span: resize.map(|(_, _, span)| span),
        accumulate_span,
        rates_unknown,
    }
}

fn keyword_of(kind: &StageKind) -> &'static str {
    match kind {
        StageKind::Train(_) => "train",
        StageKind::Freeze(_) => "freeze",
        StageKind::Epochs(_) => "epochs",
        StageKind::Lr { .. } => "lr",
        StageKind::Spread(_) => "spread",
        StageKind::Multipliers(_) => "multipliers",
        StageKind::Optimizer { .. } => "optimizer",
        StageKind::Schedule(..) => "schedule",
        StageKind::Resize { .. } => "resize",
        StageKind::BatchNorm(_) => "batchnorm",
        StageKind::Accumulate(_) => "accumulate",
        StageKind::KeepBest(_) => "keep best",
        StageKind::StopAfter { .. } => "stop after",
    }
}

/// A group name used in a stage, or the right diagnostic for why it is not one.
fn resolve(name: &Name, groups: &CheckedGroups, diagnostics: &mut Vec<Diagnostic>) -> Option<usize> {
    if let Some(index) = groups.index(&name.value) {
        return Some(index);
    }
    let diagnostic = if groups.cut_away.contains(&name.value) {
        Diagnostic::new(Code::GroupRemovedByCut, format!("group `{}` is removed by the cut", name.value))
            .at(name.span, "nothing of it is left")
            .with_help("its layers come after the cut point: drop it from this stage, or cut later")
    } else {
        Diagnostic::new(Code::UnknownGroup, format!("no group named `{}`", name.value))
            .at(name.span, "unknown group")
            .with_suggestion(&name.value, groups.names(), "groups")
    };
    diagnostics.push(diagnostic);
    None
}

fn resolve_trained(
    declaration: &StageDecl,
    groups: &CheckedGroups,
    train: Option<(Vec<bool>, Span, Vec<(usize, Span)>)>,
    freeze: Option<Vec<(usize, Span)>>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<bool> {
    let group_count = groups.groups.len();
    let mut trained = match &train {
        Some((trained, _, _)) => trained.clone(),
        // Only `freeze`: everything else trains. Neither: fastai's frozen body, the head trains.
        None if freeze.is_some() => vec![true; group_count],
        None => groups.groups.iter().map(|group| group.is_head()).collect(),
    };
    if let Some(frozen) = freeze {
        for (index, span) in frozen {
            if let Some((_, _, named)) = &train {
                if let Some((_, train_span)) = named.iter().find(|(named_index, _)| *named_index == index) {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::ConflictingTraining,
                            format!("group `{}` is both trained and frozen", groups.groups[index].name),
                        )
                        .at(span, "frozen here")
                        .with_related(*train_span, "trained here")
                        .with_help("name each group in `train` or in `freeze`, not both"),
                    );
                }
            }
            trained[index] = false;
        }
    }
    if group_count > 0 && !trained.iter().any(|trained| *trained) {
        diagnostics.push(
            Diagnostic::new(Code::StageTrainsNothing, format!("stage `{}` trains nothing", declaration.name.value))
                .at(declaration.name.span, "every group is frozen")
                .with_help(format!("train something: {}, or `train all`", groups.train_head_alone())),
        );
    }
    trained
}

fn positive_rate(value: &Spanned<f64>, what: &str, diagnostics: &mut Vec<Diagnostic>) -> bool {
    if value.value > 0.0 {
        return true;
    }
    diagnostics.push(
        Diagnostic::new(Code::NonPositiveRate, format!("{what} must be positive, not {}", value.value))
            .at(value.span, "must be > 0")
            .with_help("to keep a group still, freeze it instead: `freeze stem`"),
    );
    false
}

/// fastai's `slice(lr / spread, lr)`: geometric steps from the first group to the last.
pub fn spread_multipliers(spread: f64, group_count: usize) -> Vec<f64> {
    if group_count <= 1 {
        return vec![1.0; group_count];
    }
    let last = (group_count - 1) as f64;
    (0..group_count).map(|index| spread.powf((index as f64 - last) / last)).collect()
}

fn explicit_multipliers(map: &[(Name, Spanned<f64>)], groups: &CheckedGroups, diagnostics: &mut Vec<Diagnostic>) -> Vec<f64> {
    let mut multipliers = vec![1.0; groups.groups.len()];
    let mut given: Vec<(usize, Span)> = Vec::new();
    for (name, value) in map {
        let Some(index) = resolve(name, groups, diagnostics) else { continue };
        if let Some((_, first)) = given.iter().find(|(given_index, _)| *given_index == index) {
            diagnostics.push(
                Diagnostic::new(Code::DuplicateStatement, format!("group `{}` gets two multipliers", name.value))
                    .at(name.span, "again here")
                    .with_related(*first, "first here")
                    .with_help("give each group one multiplier"),
            );
            continue;
        }
        given.push((index, name.span));
        if positive_rate(value, "a multiplier", diagnostics) {
            multipliers[index] = value.value;
        }
    }
    multipliers
}

fn check_resize(
    sizes: &[Spanned<i64>],
    starts: &[Spanned<i64>],
    span: Span,
    epochs: Option<u32>,
    default_size: u32,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<u32> {
    // Without a valid epoch count, only the sizes themselves can be judged.
    let known_epochs = epochs;
    let epochs = epochs.unwrap_or(1);
    let fallback = vec![default_size; epochs as usize];
    let mut ok = true;
    for size in sizes.iter().filter(|size| size.value <= 0 || size.value > i64::from(MAX_IMAGE_SIDE)) {
        diagnostics.push(
            Diagnostic::new(Code::BadResizeSteps, format!("an image size must be 1..{MAX_IMAGE_SIDE} pixels, not {}", size.value))
                .at(size.span, "not a size")
                .with_help("sizes are image sides in pixels, e.g. `resize 16 -> 24 -> 32`"),
        );
        ok = false;
    }
    for pair in sizes.windows(2) {
        if pair[1].value <= pair[0].value {
            diagnostics.push(
                Diagnostic::new(Code::BadResizeSteps, format!("resize steps must grow: {} does not follow {}", pair[1].value, pair[0].value))
                    .at(pair[1].span, "not larger than the step before")
                    .with_related(pair[0].span, "previous step")
                    .with_help("progressive resizing goes from small images to large ones"),
            );
            ok = false;
        }
    }
    if known_epochs.is_none() {
        return fallback;
    }
    if sizes.len() > epochs as usize {
        diagnostics.push(
            Diagnostic::new(Code::TooManyResizeSteps, format!("{} resize steps but only {epochs} epoch{}", sizes.len(), if epochs == 1 { "" } else { "s" }))
                .at(span, "more sizes than epochs")
                .with_help("each size trains for at least one epoch: add epochs or drop sizes"),
        );
        return fallback;
    }
    let starts: Vec<u32> = if starts.is_empty() {
        let count = sizes.len() as u32;
        (0..count).map(|index| index * epochs / count + 1).collect()
    } else {
        if starts.len() != sizes.len() {
            diagnostics.push(
                Diagnostic::new(Code::BadResizeSteps, format!("{} sizes but {} start epochs", sizes.len(), starts.len()))
                    .at(span, "counts differ")
                    .with_help("give one start epoch per size, e.g. `resize 16 -> 24 at epochs 1, 3`"),
            );
            return fallback;
        }
        if starts[0].value != 1 {
            diagnostics.push(
                Diagnostic::new(Code::BadResizeSteps, "the first size must start at epoch 1")
                    .at(starts[0].span, "not epoch 1")
                    .with_help("epochs are counted from 1 within the stage"),
            );
            ok = false;
        }
        for pair in starts.windows(2) {
            if pair[1].value <= pair[0].value || pair[1].value > epochs as i64 {
                diagnostics.push(
                    Diagnostic::new(Code::BadResizeSteps, format!("start epoch {} must come after {} and within the stage's {epochs} epochs", pair[1].value, pair[0].value))
                        .at(pair[1].span, "out of order or past the last epoch")
                        .with_help("start epochs grow, from 1 up to the stage's epochs"),
                );
                ok = false;
            }
        }
        starts.iter().map(|start| start.value.clamp(1, epochs as i64) as u32).collect()
    };
    if !ok {
        return fallback;
    }
    (1..=epochs)
        .map(|epoch| {
            let step = starts.iter().rposition(|start| *start <= epoch).unwrap_or(0);
            sizes[step].value as u32
        })
        .collect()
}

/// fastai's `fit_one_cycle` parameters, each checked; what is not written keeps fastai's default.
fn check_onecycle(params: &[Spanned<OneCycleParam>], diagnostics: &mut Vec<Diagnostic>) -> OneCycle {
    let mut onecycle = OneCycle::default();
    let mut bad = |span: Span, message: String, help: &str| {
        diagnostics.push(Diagnostic::new(Code::ValueOutOfRange, message).at(span, "out of range").with_help(help.to_string()))
    };
    for param in params {
        match param.value {
            OneCycleParam::Pct(pct) if pct > 0.0 && pct < 1.0 => onecycle.pct = pct,
            OneCycleParam::Pct(pct) => bad(param.span, format!("pct is the warm-up share of the steps, in (0, 1), not {pct}"), "fastai's default is `pct 0.25`"),
            OneCycleParam::Div(div) if div >= 1.0 => onecycle.div = div,
            OneCycleParam::Div(div) => bad(param.span, format!("div divides the peak rate to give the first one; it is at least 1, not {div}"), "fastai's default is `div 25`"),
            OneCycleParam::FinalDiv(div) if div >= 1.0 => onecycle.final_div = div,
            OneCycleParam::FinalDiv(div) => bad(param.span, format!("final_div is at least 1, not {div}"), "fastai's default is `final_div 1e5`"),
            OneCycleParam::Moms(a, b, c) if [a, b, c].iter().all(|m| (0.0..1.0).contains(m)) => onecycle.moms = (a, b, c),
            OneCycleParam::Moms(a, b, c) => bad(param.span, format!("momentums are in [0, 1), not {a} {b} {c}"), "fastai's default is `moms 0.95 0.85 0.95`"),
        }
    }
    onecycle
}

fn check_optimizer(kind: OptimizerKind, params: &[Spanned<OptimizerParam>], diagnostics: &mut Vec<Diagnostic>) -> Optimizer {
    let mut optimizer = Optimizer::defaults(kind);
    let out_of_range = |span: Span, message: String, help: &str| {
        Diagnostic::new(Code::ValueOutOfRange, message).at(span, "out of range").with_help(help.to_string())
    };
    for param in params {
        match param.value {
            OptimizerParam::WeightDecay(wd) if wd >= 0.0 => optimizer.weight_decay = wd,
            OptimizerParam::WeightDecay(wd) => {
                diagnostics.push(out_of_range(param.span, format!("weight decay cannot be negative ({wd})"), "e.g. `wd 0.01`"))
            }
            OptimizerParam::Momentum(_) if kind == OptimizerKind::Adamw => diagnostics.push(out_of_range(
                param.span,
                "adamw takes `betas`, not `momentum`".into(),
                "write `betas 0.9 0.99`, or use `optimizer sgd momentum 0.9`",
            )),
            OptimizerParam::Momentum(momentum) if (0.0..1.0).contains(&momentum) => optimizer.momentum = momentum,
            OptimizerParam::Momentum(momentum) => {
                diagnostics.push(out_of_range(param.span, format!("momentum is in [0, 1), not {momentum}"), "e.g. `momentum 0.9`"))
            }
            OptimizerParam::Betas(..) | OptimizerParam::Eps(_) if kind == OptimizerKind::Sgd => diagnostics.push(out_of_range(
                param.span,
                "sgd takes `momentum` and `wd`, not `betas` or `eps`".into(),
                "use `optimizer adamw betas 0.9 0.99` for Adam's parameters",
            )),
            OptimizerParam::Betas(beta1, beta2) if (0.0..1.0).contains(&beta1) && (0.0..1.0).contains(&beta2) => {
                optimizer.beta1 = beta1;
                optimizer.beta2 = beta2;
            }
            OptimizerParam::Betas(beta1, beta2) => diagnostics.push(out_of_range(
                param.span,
                format!("betas are in [0, 1), not {beta1} and {beta2}"),
                "fastai's defaults are `betas 0.9 0.99`",
            )),
            OptimizerParam::DecayBatchNormAndBias => optimizer.decay_batchnorm_and_bias = true,
            OptimizerParam::Eps(epsilon) if epsilon > 0.0 => optimizer.epsilon = epsilon,
            OptimizerParam::Eps(epsilon) => {
                diagnostics.push(out_of_range(param.span, format!("eps must be positive, not {epsilon}"), "e.g. `eps 1e-5`"))
            }
        }
    }
    optimizer
}

#[cfg(test)]
mod tests {
    use super::spread_multipliers;

    #[test]
    fn spread_is_geometric_from_first_to_last_group() {
        let multipliers = spread_multipliers(100.0, 3);
        assert!((multipliers[0] - 0.01).abs() < 1e-12);
        assert!((multipliers[1] - 0.1).abs() < 1e-12);
        assert!((multipliers[2] - 1.0).abs() < 1e-12);
    }
}

/// `keep best` and early stopping judge every epoch's evaluation: a `valid every …` that skips
/// epochs would leave them judging some epochs and not others.
fn needs_every_epoch(span: Span, what: &str, data: &Data, diagnostics: &mut Vec<Diagnostic>) {
    if !data.valid_every.is_every_epoch() {
        diagnostics.push(
            Diagnostic::new(Code::ConflictingTraining, format!("{what} needs an evaluation after every epoch, but the data block says `valid` {}", data.valid_every.describe()))
                .at(span, "judges every epoch")
                .with_help("remove the `valid every …`/`valid last` line, or this statement"),
        );
    }
}
