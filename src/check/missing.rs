//! A statement the recipe lacks (TL2001), anchored at the recipe: what the checker and the data
//! block's check both report.

use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;

pub fn missing(anchor: Span, message: &str, help: &str) -> Diagnostic {
    Diagnostic::new(Code::MissingStatement, message).at(anchor, "in this recipe").with_help(help)
}
