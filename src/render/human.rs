use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, NamedSource, SourceSpan};

use super::FileDiagnostics;
use crate::diagnostics::{Diagnostic, Severity};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HumanStyle {
    Colour,
    Plain,
}

/// miette's graphical report for each diagnostic, uncoloured unless asked.
pub fn render(file: &FileDiagnostics<'_>, style: HumanStyle) -> String {
    let theme = match style {
        HumanStyle::Colour => GraphicalTheme::unicode(),
        HumanStyle::Plain => GraphicalTheme::unicode_nocolor(),
    };
    let handler = GraphicalReportHandler::new_themed(theme).with_width(100).with_links(false);
    let mut out = String::new();
    for diagnostic in file.diagnostics {
        let view = MietteView {
            diagnostic,
            source: NamedSource::new(file.path, file.source.to_string()).with_language("tl"),
        };
        if handler.render_report(&mut out, &view).is_err() {
            out.push_str(&format!("{}: {}\n", diagnostic.code, diagnostic.message));
        }
        out.push('\n');
    }
    out
}

/// Adapts our plain-data diagnostic to miette's trait for rendering.
struct MietteView<'a> {
    diagnostic: &'a Diagnostic,
    source: NamedSource<String>,
}

impl std::fmt::Debug for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.diagnostic.fmt(f)
    }
}

impl std::fmt::Display for MietteView<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.diagnostic.message)
    }
}

impl std::error::Error for MietteView<'_> {}

impl miette::Diagnostic for MietteView<'_> {
    fn code<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        Some(Box::new(format!("{}({})", self.diagnostic.code, self.diagnostic.code.title())))
    }

    fn severity(&self) -> Option<miette::Severity> {
        Some(match self.diagnostic.severity() {
            Severity::Error => miette::Severity::Error,
            Severity::Warning => miette::Severity::Warning,
        })
    }

    fn help<'b>(&'b self) -> Option<Box<dyn std::fmt::Display + 'b>> {
        let explain = format!("run `tlrun explain {}` for more", self.diagnostic.code);
        Some(Box::new(match &self.diagnostic.help {
            Some(help) => format!("{help}\n{explain}"),
            None => explain,
        }))
    }

    fn source_code(&self) -> Option<&dyn miette::SourceCode> {
        self.diagnostic.span.is_some().then_some(&self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diagnostic.span?;
        let length = self.source.inner().len();
        let clamp = move |start: usize, len: usize| -> SourceSpan {
            let start = start.min(length);
            (start, len.min(length - start)).into()
        };
        let primary = LabeledSpan::new_primary_with_span(Some(self.diagnostic.label.clone()), clamp(span.start, span.len()));
        let related = self
            .diagnostic
            .related
            .iter()
            .map(move |label| LabeledSpan::new_with_span(Some(label.message.clone()), clamp(label.span.start, label.span.len())));
        Some(Box::new(std::iter::once(primary).chain(related)))
    }
}
