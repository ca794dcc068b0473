//! What a recipe says about other recipes: the recipes and zoo entries its backbone starts from,
//! the zoo entry it publishes and the file it exports. Read from the syntax tree alone, so that
//! every walk over recipe files (lint's loop check, `tlrun run FOLDER` and its staleness walk, a
//! run finding its upstream's export) sees the same links, even in a recipe with errors.

use crate::export_format::ExportFormat;
use crate::span::Spanned;
use crate::syntax::ast::{Ast, ItemKind, WeightsSource};

#[derive(Debug, Clone, Default, PartialEq)]
pub struct RecipeLinks {
    /// `from recipe "…"`, as written (relative to the recipe's folder).
    pub recipes: Vec<Spanned<String>>,
    /// `from zoo "…"`.
    pub zoo: Vec<Spanned<String>>,
    /// `publish "…"`.
    pub publishes: Option<String>,
    /// The safetensors `export "…"`, as written (relative to the recipe's folder): what
    /// `from recipe` loads. An `.onnx` export is not one.
    pub export: Option<String>,
}

pub fn links(ast: &Ast) -> RecipeLinks {
    let mut links = RecipeLinks::default();
    for item in &ast.items {
        match &item.kind {
            ItemKind::Backbone(backbone) => match backbone.weights.as_ref().map(|weights| &weights.value) {
                Some(WeightsSource::Recipe(reference)) => links.recipes.push(reference.clone()),
                Some(WeightsSource::Zoo(entry)) => links.zoo.push(entry.clone()),
                _ => {}
            },
            ItemKind::Publish(name) => links.publishes = Some(name.value.clone()),
            ItemKind::Export(path) if ExportFormat::of_text(&path.value) == ExportFormat::Safetensors && links.export.is_none() => links.export = Some(path.value.clone()),
            _ => {}
        }
    }
    links
}

