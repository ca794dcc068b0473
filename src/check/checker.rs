use super::recipe::{Loss, Prediction, Recipe};
use super::missing::missing;
use super::world::World;
use super::{backbone, data, groups, head, items, stages, traps};
use crate::diagnostics::{Code, Diagnostic};
use crate::syntax::ast::{Ast, LossOption};

/// Seed used when a recipe names none, so that every run is reproducible anyway.
pub const DEFAULT_SEED: u64 = 42;

/// Check a parsed recipe. Returns the recipe whenever its backbone resolves (even with other errors,
/// so that `plan` can still show something) and every diagnostic found.
pub fn check(ast: &Ast, file_stem: &str, world: &dyn World) -> (Option<Recipe>, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let items = items::collect(ast, &mut diagnostics);
    let anchor = items.first_keyword.unwrap_or_default();

    let name = items.recipe.map_or_else(|| file_stem.to_string(), |name| name.value.clone());
    let seed = data::seed_value(items.seed, DEFAULT_SEED, &mut diagnostics);

    if items.stages.is_empty() {
        diagnostics.push(missing(
            anchor,
            "the recipe has no `stage`",
            "add at least one, e.g. `stage warmup { train head  epochs 1  lr 2e-3 }`",
        ));
    }
    let Some(backbone_decl) = items.backbone else {
        diagnostics.push(missing(anchor, "the recipe has no `backbone`", "add e.g. `backbone resnet18 from zoo \"resnet18-imagenet\"`"));
        if items.data.is_none() {
            diagnostics.push(missing(anchor, "the recipe has no `data` block", "add `data { train \"path/to/train\" }`"));
        }
        return (None, diagnostics);
    };
    let backbone = backbone::check(backbone_decl, world, &mut diagnostics);
    let data = data::check(items.data, backbone.as_ref(), world, seed, anchor, &mut diagnostics);
    let Some(backbone) = backbone else { return (None, diagnostics) };
    let architecture = backbone.architecture;

    let kept_layers = match items.cut {
        None => architecture.layer_index(architecture.default_cut_after).map_or(architecture.layers.len(), |i| i + 1),
        Some(cut) => match architecture.layer_index(&cut.layer.value) {
            Some(index) => match cut.side {
                crate::syntax::ast::CutSide::After => index + 1,
                crate::syntax::ast::CutSide::Before => index,
            },
            None => {
                diagnostics.push(
                    Diagnostic::new(
                        Code::UnknownLayer,
                        format!("`{}` has no layer `{}` to cut at", architecture.name, cut.layer.value),
                    )
                    .at(cut.layer.span, "not a layer of the backbone")
                    .with_suggestion(&cut.layer.value, architecture.layer_names(), "layers"),
                );
                architecture.layers.len()
            }
        },
    };
    if kept_layers == 0 {
        if let Some(cut) = items.cut {
            diagnostics.push(
                Diagnostic::new(Code::InvalidHead, "the cut keeps no layer of the backbone")
                    .at(cut.layer.span, "nothing is left before this layer")
                    .with_help("cut later, e.g. `cut after layer4`"),
            );
        }
    }

    let classes = data.classes.as_ref().map(Vec::len);
    let head = head::check(items.head, architecture, kept_layers, classes, &mut diagnostics);
    let groups = groups::check(items.groups, architecture, kept_layers, &mut diagnostics);
    let checked_stages = stages::check(&items.stages, &groups, &data, &mut diagnostics);
    traps::check(&backbone, &data, items.data, &groups, &checked_stages, &mut diagnostics);
    traps::few_steps(&data, items.data, &checked_stages, &mut diagnostics);
    traps::few_shot_unswept(&data, items.data, items.sweeps_seed, &mut diagnostics);

    let checkpoint_every = items.checkpoint.and_then(|steps| match u32::try_from(steps.value).ok().filter(|n| *n > 0) {
        Some(steps) => Some(steps),
        None => {
            // Judged on the number as written: 2^32 and more is over the limit, not "below 1".
            let diagnostic = if steps.value < 1 {
                Diagnostic::new(Code::ValueOutOfRange, format!("checkpoints come every 1 or more steps, not {}", steps.value)).at(steps.span, "not a step count")
            } else {
                Diagnostic::new(Code::ValueOutOfRange, format!("checkpoints come every {} steps at most, not {}", u32::MAX, steps.value)).at(steps.span, "over the limit")
            };
            diagnostics.push(diagnostic.with_help("e.g. `checkpoint every 50 steps`; every epoch ends with a checkpoint anyway"));
            None
        }
    });
    let loss = check_loss(items.loss, &mut diagnostics);
    let ema = items.ema.and_then(|decay| {
        if decay.value > 0.0 && decay.value < 1.0 {
            Some(decay.value)
        } else {
            diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("an EMA decay is in (0, 1), not {}", decay.value))
                    .at(decay.span, "not a decay")
                    .with_help("e.g. `ema 0.999` (timm's ModelEmaV2 default is 0.9999; few-shot runs with few steps want less)"),
            );
            None
        }
    });
    let regularisers = crate::check::regularise::check(items.regularise.unwrap_or_default(), &mut diagnostics);
    let mut recipe = Recipe {
        name,
        seed,
        backbone,
        data,
        kept_layers,
        head,
        groups: groups.groups,
        stages: checked_stages.into_iter().map(|checked| checked.stage).collect(),
        exports: items.exports.iter().map(|path| path.value.clone()).collect(),
        publish: items.publish.map(|name| name.value.clone()),
        checkpoint_every,
        loss,
        ema,
        l2sp: regularisers.l2sp,
        bss: regularisers.bss,
        // Set below: whether LwF fits depends on the recipe's backbone, cut and head.
        lwf: None,
        tta_flip: items.tta_flip,
        predictions: check_predictions(&items.predictions, world, &mut diagnostics),
    };
    if let Some((lwf, span)) = regularisers.lwf {
        recipe.lwf = crate::check::regularise::check_lwf_fits(&recipe, span, &mut diagnostics).then_some(lwf);
    }
    traps::batch_of_one(&recipe, items.data, &mut diagnostics);
    (Some(recipe), diagnostics)
}

fn check_loss(options: Option<&[crate::span::Spanned<LossOption>]>, diagnostics: &mut Vec<Diagnostic>) -> Loss {
    let mut loss = Loss::default();
    for option in options.unwrap_or_default() {
        match option.value {
            LossOption::Smoothing(epsilon) if (0.0..1.0).contains(&epsilon) => loss.smoothing = epsilon,
            LossOption::Smoothing(epsilon) => diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("label smoothing is in [0, 1), not {epsilon}"))
                    .at(option.span, "out of range")
                    .with_help("e.g. `loss cross_entropy smoothing 0.1`"),
            ),
            LossOption::BalancedWeights => loss.balanced_weights = true,
        }
    }
    loss
}

/// `predict "input" into "output"`: the output is a .csv or .jsonl file; the input folder must
/// exist under `--strict` (as train folders).
fn check_predictions(
    predictions: &[(&crate::span::Spanned<String>, &crate::span::Spanned<String>)],
    world: &dyn World,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<Prediction> {
    let mut checked = Vec::new();
    for (input, output) in predictions {
        let extension = std::path::Path::new(&output.value).extension().and_then(|extension| extension.to_str()).unwrap_or("");
        if !matches!(extension, "csv" | "jsonl" | "json") {
            diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("predictions are written as .csv or .jsonl, not `{}`", output.value))
                    .at(output.span, "not .csv or .jsonl")
                    .with_help(format!("e.g. `predict \"{}\" into \"predictions.csv\"`", input.value)),
            );
            continue;
        }
        if world.strict() && world.class_folders(&input.value).is_none() {
            diagnostics.push(
                Diagnostic::new(Code::DataFolderMissing, format!("folder `{}` to predict does not exist", input.value))
                    .at(input.span, "not found")
                    .with_help(super::data::where_paths_point(&input.value)),
            );
        }
        checked.push(Prediction { input: input.value.clone(), output: output.value.clone() });
    }
    checked
}
