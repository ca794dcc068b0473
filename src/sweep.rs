//! `sweep { seed 0 1 2  lr finetune 1e-3 3e-3 }`: one recipe, many runs. A variant is the recipe's
//! text with one value of every axis written in (the smallest edit, `syntax::edit::set_swept`) and
//! the sweep removed, so it is checked, planned and run exactly as if the user had written it.
//! Front end: no IO, no burn.

use crate::diagnostics::{Code, Diagnostic, did_you_mean};
use crate::span::Span;
use crate::syntax::ast::{Ast, ItemKind, SweepAxis, SweepKind};
use crate::syntax::edit;

/// The most variants one sweep may make: past it, lint says so (TL2010) and nothing runs.
pub const MAX_VARIANTS: usize = 256;

#[derive(Debug, Clone, PartialEq)]
pub struct Variant {
    /// `seed=0,finetune.lr=1e-3`: the run's folder name and its label in summaries.
    pub name: String,
    /// (axis, value) in the sweep's order, values as written.
    pub values: Vec<(String, String)>,
    /// The recipe text with these values written in and without its sweep.
    pub source: String,
}

/// `seed`, `finetune.lr`, `finetune.epochs`, `batch`, `cut`.
pub fn axis_label(kind: &SweepKind) -> String {
    match kind {
        SweepKind::Seed => "seed".to_string(),
        SweepKind::Lr(stage) => format!("{}.lr", stage.value),
        SweepKind::Epochs(stage) => format!("{}.epochs", stage.value),
        SweepKind::Batch => "batch".to_string(),
        SweepKind::Cut => "cut".to_string(),
        SweepKind::Spread(stage) => format!("{}.spread", stage.value),
        SweepKind::Zoo => "zoo".to_string(),
    }
}

/// The recipe's sweep: the block's span and its axes.
pub fn sweep_of(ast: &Ast) -> Option<(Span, &[SweepAxis])> {
    ast.items.iter().find_map(|item| match &item.kind {
        ItemKind::Sweep(axes) => Some((item.span, axes.as_slice())),
        _ => None,
    })
}

/// How many variants the axes make (the product of their lengths), saturating.
pub fn count(axes: &[SweepAxis]) -> usize {
    axes.iter().fold(1usize, |product, axis| product.saturating_mul(axis.values.len().max(1)))
}

/// Every variant of `source`, the last axis varying fastest; none without a sweep. `Err` when
/// the text cannot be edited (lint reports why) or the sweep makes more than `MAX_VARIANTS`.
pub fn variants(source: &str) -> Result<Vec<Variant>, String> {
    let (ast, diagnostics) = crate::syntax::parse(source);
    if !diagnostics.is_empty() {
        return Err("the recipe has syntax errors; fix them first (`tlrun lint`)".to_string());
    }
    let Some((span, axes)) = sweep_of(&ast) else { return Ok(Vec::new()) };
    let total = count(axes);
    if total > MAX_VARIANTS {
        return Err(format!("the sweep makes {total} variants, more than {MAX_VARIANTS}"));
    }
    let base = variant_base(source, &ast, span);
    let mut variants = Vec::with_capacity(total);
    for index in 0..total {
        let mut rest = index;
        let mut picks = vec![0; axes.len()];
        for (pick, axis) in picks.iter_mut().zip(axes).rev() {
            *pick = rest % axis.values.len().max(1);
            rest /= axis.values.len().max(1);
        }
        let mut text = base.clone();
        let mut values = Vec::with_capacity(axes.len());
        for (axis, pick) in axes.iter().zip(picks) {
            let value = &axis.values[pick].value;
            text = edit::set_swept(&text, &axis.kind, value)?;
            values.push((axis_label(&axis.kind), value.clone()));
        }
        let name = values.iter().map(|(axis, value)| format!("{axis}={value}")).collect::<Vec<_>>().join(",");
        variants.push(Variant { name, values, source: text });
    }
    Ok(variants)
}

/// The recipe without its sweep, and without what every variant would write to the same place
/// (`export`, `publish`, `predict`): each variant's model stays in its own run folder, from
/// which `tlrun export` or `tlrun predict` takes the one chosen.
fn variant_base(source: &str, ast: &Ast, sweep: Span) -> String {
    let mut spans: Vec<Span> = ast
        .items
        .iter()
        .filter(|item| matches!(item.kind, ItemKind::Export(_) | ItemKind::Publish(_) | ItemKind::Predict { .. }))
        .map(|item| item.span)
        .chain([sweep])
        .collect();
    spans.sort_by_key(|span| std::cmp::Reverse(span.start));
    spans.iter().fold(source.to_string(), |text, span| edit::remove(&text, span.start, span.end))
}

/// Lint of a sweep: the number of variants, axes written twice, stages that do not exist, and
/// each value checked as if written in the recipe — an error it causes is reported on the value.
/// `check` is the front end (parse and check) applied to a recipe text without a sweep.
pub fn check(source: &str, ast: &Ast, base_errors: &[Diagnostic], check: &dyn Fn(&str) -> Vec<Diagnostic>) -> Vec<Diagnostic> {
    let Some((span, axes)) = sweep_of(ast) else { return Vec::new() };
    let mut diagnostics = Vec::new();
    let total = count(axes);
    if total > MAX_VARIANTS {
        let sizes: Vec<String> = axes.iter().map(|axis| format!("{} {}", axis_label(&axis.kind), axis.values.len())).collect();
        diagnostics.push(
            Diagnostic::new(Code::TooManyVariants, format!("this sweep makes {total} runs, more than {MAX_VARIANTS}"))
                .at(span, format!("{} = {total} variants", sizes.join(" × ")))
                .with_help("sweep fewer values, or split the sweep over several recipes"),
        );
        return diagnostics;
    }
    let mut seen: Vec<(String, Span)> = Vec::new();
    let stages: Vec<&str> = ast
        .items
        .iter()
        .filter_map(|item| match &item.kind {
            ItemKind::Stage(stage) => Some(stage.name.value.as_str()),
            _ => None,
        })
        .collect();
    let base = edit::remove(source, span.start, span.end);
    for axis in axes {
        let label = axis_label(&axis.kind);
        if let Some((_, first)) = seen.iter().find(|(known, _)| *known == label) {
            diagnostics.push(crate::check::items::duplicate(&format!("sweep {label}"), axis.span, *first));
            continue;
        }
        seen.push((label.clone(), axis.span));
        if let SweepKind::Lr(stage) | SweepKind::Epochs(stage) | SweepKind::Spread(stage) = &axis.kind {
            if !stages.contains(&stage.value.as_str()) {
                let mut diagnostic = Diagnostic::new(Code::UnknownStage, format!("the recipe has no stage `{}` to sweep", stage.value))
                    .at(stage.span, "no such stage");
                diagnostic = match did_you_mean(&stage.value, stages.iter().copied()) {
                    Some(name) => diagnostic.with_help(format!("did you mean `{name}`?")),
                    None => diagnostic.with_help(format!("the stages are: {}", stages.join(", "))),
                };
                diagnostics.push(diagnostic);
                continue;
            }
        }
        for value in &axis.values {
            let edited = match edit::set_swept(&base, &axis.kind, &value.value) {
                Ok(edited) => edited,
                Err(reason) => {
                    diagnostics.push(Diagnostic::new(Code::ValueOutOfRange, format!("`{label} {}` cannot be written into the recipe: {reason}", value.value)).at(value.span, "here"));
                    continue;
                }
            };
            for found in check(&edited).into_iter().filter(|found| found.is_error()) {
                if base_errors.iter().any(|known| known.code == found.code && known.message == found.message) {
                    continue;
                }
                let mut moved = Diagnostic::new(found.code, format!("with {label} {}: {}", value.value, found.message)).at(value.span, "this value");
                if let Some(help) = found.help.clone() {
                    moved = moved.with_help(help);
                }
                diagnostics.push(moved);
            }
        }
    }
    diagnostics
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPE: &str = "recipe \"r\"\nseed 1\nbackbone resnet_small from none\ndata { train \"d\" batch 8 }\nstage warmup { train head epochs 1 lr 1e-2 }\nstage finetune { train all epochs 2 lr 1e-3 }\n";

    #[test]
    fn variants_are_the_product_the_last_axis_fastest() {
        let source = format!("{RECIPE}sweep {{ seed 0 1 2  lr finetune 3e-4 3e-3 }}\n");
        let variants = variants(&source).unwrap();
        let names: Vec<&str> = variants.iter().map(|variant| variant.name.as_str()).collect();
        assert_eq!(names, ["seed=0,finetune.lr=3e-4", "seed=0,finetune.lr=3e-3", "seed=1,finetune.lr=3e-4", "seed=1,finetune.lr=3e-3", "seed=2,finetune.lr=3e-4", "seed=2,finetune.lr=3e-3"]);
        let last = &variants[5].source;
        assert!(last.contains("seed 2\n") && last.contains("stage finetune { train all epochs 2 lr 3e-3 }") && !last.contains("sweep"), "{last}");
        assert!(last.contains("stage warmup { train head epochs 1 lr 1e-2 }"), "other stages untouched: {last}");
    }

    #[test]
    fn every_axis_writes_its_value_or_adds_the_statement() {
        let source = "recipe \"r\"\nbackbone resnet18 from none\ndata { train \"d\" }\nstage s { train all }\nsweep { seed 7 epochs s 3 batch 16 cut layer2 lr s 1e-3 }\n";
        let variant = &variants(source).unwrap()[0];
        assert_eq!(variant.name, "seed=7,s.epochs=3,batch=16,cut=layer2,s.lr=1e-3");
        let (ast, diagnostics) = crate::syntax::parse(&variant.source);
        assert!(diagnostics.is_empty(), "{}", variant.source);
        assert!(sweep_of(&ast).is_none());
        for written in ["seed 7", "batch 16", "cut after layer2", "epochs 3", "lr 1e-3"] {
            assert!(variant.source.contains(written), "{written} in {}", variant.source);
        }
    }

    #[test]
    fn spread_and_zoo_entries_are_axes_too() {
        let source = "recipe \"r\"\nbackbone resnet18 from zoo \"a\"\ndata { train \"d\" }\nstage f { train all lr 1e-3 }\nsweep { spread f 10 100  zoo \"b\" \"c\" }\n";
        let variants = variants(source).unwrap();
        let names: Vec<&str> = variants.iter().map(|variant| variant.name.as_str()).collect();
        assert_eq!(names, ["f.spread=10,zoo=b", "f.spread=10,zoo=c", "f.spread=100,zoo=b", "f.spread=100,zoo=c"]);
        assert!(variants[3].source.contains("from zoo \"c\"") && variants[3].source.contains("lr 1e-3 spread 100 }"), "{}", variants[3].source);
    }

    #[test]
    fn no_sweep_no_variants_and_too_many_is_refused() {
        assert!(variants(RECIPE).unwrap().is_empty());
        let seeds: String = (0..20).map(|seed| format!(" {seed}")).collect();
        let source = format!("{RECIPE}sweep {{ seed{seeds} batch{seeds} }}\n");
        assert!(variants(&source).unwrap_err().contains("400 variants"));
    }
}
