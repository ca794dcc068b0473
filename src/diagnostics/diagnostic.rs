use serde::Serialize;

use super::{Code, Severity};
use crate::span::Span;

/// A secondary place in the source that explains the primary one.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Label {
    pub span: Span,
    pub message: String,
}

/// One finding about a recipe. Plain data (gleam-style): no colours, no IO, rendered in one place.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub message: String,
    /// Where the problem is; `None` for findings with no place in the text (a missing folder).
    pub span: Option<Span>,
    /// What the primary span shows, in a few words.
    pub label: String,
    pub related: Vec<Label>,
    pub help: Option<String>,
}

impl Diagnostic {
    pub fn new(code: Code, message: impl Into<String>) -> Self {
        Diagnostic {
            code,
            message: message.into(),
            span: None,
            label: String::new(),
            related: Vec::new(),
            help: None,
        }
    }

    /// Attach the place (typst's `.at(span)`): helpers build span-less errors, callers place them.
    pub fn at(mut self, span: Span, label: impl Into<String>) -> Self {
        self.span = Some(span);
        self.label = label.into();
        self
    }

    pub fn with_related(mut self, span: Span, message: impl Into<String>) -> Self {
        self.related.push(Label { span, message: message.into() });
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Append a "did you mean" hint when a close candidate exists; otherwise list what is allowed.
    pub fn with_suggestion<'a>(
        self,
        written: &str,
        candidates: impl IntoIterator<Item = &'a str> + Clone,
        what: &str,
    ) -> Self {
        match super::did_you_mean(written, candidates.clone()) {
            Some(best) => self.with_help(format!("did you mean `{best}`?")),
            None => {
                let all: Vec<String> = candidates.into_iter().map(|c| format!("`{c}`")).collect();
                if all.is_empty() {
                    self
                } else {
                    self.with_help(format!("{what} here: {}", all.join(", ")))
                }
            }
        }
    }

    pub fn severity(&self) -> Severity {
        self.code.severity()
    }

    pub fn is_error(&self) -> bool {
        self.severity() == Severity::Error
    }
}
