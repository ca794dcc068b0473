use miette::{GraphicalReportHandler, GraphicalTheme, LabeledSpan, SourceSpan};

use crate::span::LineIndex;

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
    // One index and one source for every diagnostic of the file: rendering stays linear in it.
    let source = IndexedSource { name: file.path.to_string(), text: file.source, lines: LineIndex::new(file.source) };
    for diagnostic in file.diagnostics {
        if !fits_graphical(&source, diagnostic) {
            out.push_str(&compact(file, &source.lines, diagnostic));
            out.push('\n');
            continue;
        }
        let view = MietteView { diagnostic, source: &source };
        if handler.render_report(&mut out, &view).is_err() {
            out.push_str(&compact(file, &source.lines, diagnostic));
        }
        out.push('\n');
    }
    out
}

/// Longest line or message the graphical report draws. miette pads with format width arguments,
/// which panic past 65535 columns; far below that, a report is unreadable anyway.
const MAX_DRAWN: usize = 2000;

/// Whether miette can draw this diagnostic: every labelled line and the message are short enough.
fn fits_graphical(source: &IndexedSource<'_>, diagnostic: &Diagnostic) -> bool {
    let line_length = |offset: usize| {
        let line = source.lines.line_of(offset.min(source.text.len()));
        let start = source.lines.line_start(line, source.text);
        let end = source.lines.line_start(line + 1, source.text);
        end - start
    };
    let spans = diagnostic.span.into_iter().chain(diagnostic.related.iter().map(|label| label.span));
    diagnostic.message.len() <= MAX_DRAWN
        && diagnostic.help.as_ref().is_none_or(|help| help.len() <= MAX_DRAWN)
        && spans.into_iter().all(|span| span.len() <= MAX_DRAWN && line_length(span.start) <= MAX_DRAWN && line_length(span.end) <= MAX_DRAWN)
}

/// One diagnostic as plain lines, for what the graphical report cannot draw: long texts are cut
/// in the middle, and the place is given as `file:line:column`.
fn compact(file: &FileDiagnostics<'_>, lines: &LineIndex, diagnostic: &Diagnostic) -> String {
    let mut out = format!("{}({})\n\n", diagnostic.code, diagnostic.code.title());
    let mark = if diagnostic.is_error() { "×" } else { "⚠" };
    out.push_str(&format!("  {mark} {}\n", shorten(&diagnostic.message)));
    if let Some(span) = diagnostic.span {
        let (line, column) = lines.line_col(file.source, span.start);
        out.push_str(&format!("  at {}:{line}:{column}: {}\n", file.path, shorten(&diagnostic.label)));
    }
    for related in &diagnostic.related {
        let (line, column) = lines.line_col(file.source, related.span.start);
        out.push_str(&format!("  and {}:{line}:{column}: {}\n", file.path, shorten(&related.message)));
    }
    if let Some(help) = &diagnostic.help {
        out.push_str(&format!("  help: {}\n", shorten(help)));
    }
    out.push_str(&format!("        run `tlrun explain {}` for more\n", diagnostic.code));
    out
}

/// `text`, or its start and end around `…(N characters)…` when it is longer than a report shows.
fn shorten(text: &str) -> String {
    const KEEP: usize = 60;
    let count = text.chars().count();
    if count <= 2 * KEEP + 40 {
        return text.to_string();
    }
    let head: String = text.chars().take(KEEP).collect();
    let tail: String = text.chars().skip(count - KEEP).collect();
    format!("{head}…({} characters)…{tail}", count - 2 * KEEP)
}

/// Adapts our plain-data diagnostic to miette's trait for rendering.
struct MietteView<'a> {
    diagnostic: &'a Diagnostic,
    source: &'a IndexedSource<'a>,
}

/// The file as miette reads it, through a line index: miette's own reader for a string scans from
/// the start of the file for every label, which over thousands of diagnostics is quadratic. This
/// one hands miette's reader only the lines around the label (the context it would show, plus two
/// lines to spare) and moves the answer back into file coordinates, so the report is the same.
struct IndexedSource<'a> {
    name: String,
    text: &'a str,
    lines: LineIndex,
}

impl miette::SourceCode for IndexedSource<'_> {
    fn read_span<'b>(
        &'b self,
        span: &SourceSpan,
        context_lines_before: usize,
        context_lines_after: usize,
    ) -> Result<Box<dyn miette::SpanContents<'b> + 'b>, miette::MietteError> {
        let (start, end) = (span.offset(), span.offset() + span.len());
        if start > self.text.len() {
            return Err(miette::MietteError::OutOfBounds);
        }
        let first_line = self.lines.line_of(start).saturating_sub(context_lines_before);
        let last_line = self.lines.line_of(end.min(self.text.len())) + context_lines_after + 2;
        let window_start = self.lines.line_start(first_line, self.text);
        let window_end = self.lines.line_start(last_line + 1, self.text);
        let window = &self.text[window_start..window_end];
        let shifted: SourceSpan = (start - window_start, span.len()).into();
        let contents = window.read_span(&shifted, context_lines_before, context_lines_after)?;
        let found = *contents.span();
        Ok(Box::new(
            miette::MietteSpanContents::new_named(
                self.name.clone(),
                contents.data(),
                (found.offset() + window_start, found.len()).into(),
                contents.line() + first_line,
                contents.column(),
                contents.line_count() + first_line,
            )
            .with_language("tl"),
        ))
    }
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
        self.diagnostic.span.is_some().then_some(self.source as &dyn miette::SourceCode)
    }

    fn labels(&self) -> Option<Box<dyn Iterator<Item = LabeledSpan> + '_>> {
        let span = self.diagnostic.span?;
        let length = self.source.text.len();
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
