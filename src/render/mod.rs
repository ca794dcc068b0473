//! Diagnostics to text. The only place (with the CLI) that knows about miette, colours and JSON.

mod github;
mod human;
mod json;

pub use github::render as github;
pub use human::{render as human, HumanStyle};
pub use json::render as json;

use crate::diagnostics::Diagnostic;

/// A diagnostic together with the file it belongs to.
pub struct FileDiagnostics<'a> {
    pub path: &'a str,
    pub source: &'a str,
    pub diagnostics: &'a [Diagnostic],
}
