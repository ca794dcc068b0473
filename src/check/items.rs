//! Sorting top-level items by kind, and reporting the ones written twice.

use crate::diagnostics::{Code, Diagnostic};
use crate::export_format::ExportFormat;
use crate::span::{Span, Spanned};
use crate::syntax::ast::*;

/// The top-level items of one recipe: the first of each kind, and every stage.
#[derive(Default)]
pub struct Items<'a> {
    pub first_keyword: Option<Span>,
    pub recipe: Option<&'a Spanned<String>>,
    pub seed: Option<&'a Spanned<i64>>,
    pub backbone: Option<&'a BackboneDecl>,
    pub data: Option<(&'a Item, &'a [DataStatement])>,
    pub cut: Option<&'a CutDecl>,
    pub head: Option<(&'a Item, &'a [Spanned<HeadLayer>])>,
    pub groups: Option<&'a [GroupDef]>,
    pub stages: Vec<&'a StageDecl>,
    /// One `export` per format: a second file of the same format is a duplicate.
    pub exports: Vec<&'a Spanned<String>>,
    pub publish: Option<&'a Spanned<String>>,
    pub checkpoint: Option<&'a Spanned<i64>>,
    pub loss: Option<&'a [Spanned<LossOption>]>,
    pub ema: Option<&'a Spanned<f64>>,
    /// `regularise …`: its terms.
    pub regularise: Option<&'a [Spanned<Regulariser>]>,
    pub tta_flip: bool,
    /// Whether a `sweep` varies the seed.
    pub sweeps_seed: bool,
    /// `predict "input" into "output"`, every one.
    pub predictions: Vec<(&'a Spanned<String>, &'a Spanned<String>)>,
}

pub fn collect<'a>(ast: &'a Ast, diagnostics: &mut Vec<Diagnostic>) -> Items<'a> {
    let mut items = Items { first_keyword: ast.items.first().map(|item| item.keyword), ..Items::default() };
    let mut seen: Vec<(&'static str, Span)> = Vec::new();
    for item in &ast.items {
        let keyword = match &item.kind {
            ItemKind::Stage(stage) => {
                items.stages.push(stage);
                continue;
            }
            ItemKind::Predict { input, output } => {
                match items.predictions.iter().find(|(_, known)| known.value == output.value) {
                    Some((_, first)) => diagnostics.push(
                        Diagnostic::new(Code::DuplicateStatement, format!("two `predict` steps write `{}`", output.value))
                            .at(output.span, "written again here")
                            .with_related(first.span, "first written here")
                            .with_help("give each `predict` its own output file"),
                    ),
                    None => items.predictions.push((input, output)),
                }
                continue;
            }
            ItemKind::Export(path) => {
                match items.exports.iter().find(|known| ExportFormat::of_text(&known.value) == ExportFormat::of_text(&path.value)) {
                    Some(first) => diagnostics.push(
                        duplicate("export", item.keyword, first.span)
                            .with_help("export once per format: one `.safetensors` (PyTorch, `from recipe`) and one `.onnx` (ONNX Runtime)"),
                    ),
                    None => items.exports.push(path),
                }
                continue;
            }
            ItemKind::Recipe(_) => "recipe",
            ItemKind::Seed(_) => "seed",
            ItemKind::Backbone(_) => "backbone",
            ItemKind::Data(_) => "data",
            ItemKind::Cut(_) => "cut",
            ItemKind::Head(_) => "head",
            ItemKind::Groups(_) => "groups",
            ItemKind::Publish(_) => "publish",
            ItemKind::Checkpoint(_) => "checkpoint",
            ItemKind::Loss(_) => "loss",
            ItemKind::Ema(_) => "ema",
            ItemKind::Regularise(_) => "regularise",
            ItemKind::TtaFlip => "tta",
            ItemKind::Sweep(_) => "sweep",
        };
        if let Some((_, first)) = seen.iter().find(|(word, _)| *word == keyword) {
            diagnostics.push(duplicate(keyword, item.keyword, *first));
            continue;
        }
        seen.push((keyword, item.keyword));
        match &item.kind {
            ItemKind::Recipe(name) => items.recipe = Some(name),
            ItemKind::Seed(seed) => items.seed = Some(seed),
            ItemKind::Backbone(backbone) => items.backbone = Some(backbone),
            ItemKind::Data(statements) => items.data = Some((item, statements)),
            ItemKind::Cut(cut) => items.cut = Some(cut),
            ItemKind::Head(layers) => items.head = Some((item, layers)),
            ItemKind::Groups(groups) => items.groups = Some(groups),
            ItemKind::Publish(name) => items.publish = Some(name),
            ItemKind::Checkpoint(steps) => items.checkpoint = Some(steps),
            ItemKind::Loss(options) => items.loss = Some(options),
            ItemKind::Ema(decay) => items.ema = Some(decay),
            ItemKind::Regularise(terms) => items.regularise = Some(terms),
            ItemKind::TtaFlip => items.tta_flip = true,
            // Variants are made from the text (`crate::sweep`); the recipe itself is the base.
            ItemKind::Sweep(axes) => items.sweeps_seed = axes.iter().any(|axis| axis.kind == SweepKind::Seed),
            ItemKind::Stage(_) | ItemKind::Export(_) | ItemKind::Predict { .. } => {}
        }
    }
    items
}

/// A statement that may appear once, written again.
pub fn duplicate(keyword: &str, again: Span, first: Span) -> Diagnostic {
    Diagnostic::new(Code::DuplicateStatement, format!("`{keyword}` is written twice"))
        .at(again, "written again here")
        .with_related(first, "first written here")
        .with_help(format!("keep one `{keyword}`: only the first one counts"))
}
