use serde::Serialize;

use super::FileDiagnostics;

#[derive(Serialize)]
struct JsonLabel<'a> {
    message: &'a str,
    line: usize,
    column: usize,
    start: usize,
    end: usize,
}

#[derive(Serialize)]
struct JsonDiagnostic<'a> {
    file: &'a str,
    code: &'a str,
    title: &'a str,
    severity: crate::diagnostics::Severity,
    message: &'a str,
    help: Option<&'a str>,
    /// The primary place; absent for findings with no place in the text.
    location: Option<JsonLabel<'a>>,
    related: Vec<JsonLabel<'a>>,
}

/// All diagnostics of all files as one JSON array (stable field names; tools read this).
pub fn render(files: &[FileDiagnostics<'_>]) -> String {
    let mut all = Vec::new();
    for file in files {
        let lines = crate::span::LineIndex::new(file.source);
        for diagnostic in file.diagnostics {
            all.push(JsonDiagnostic {
                file: file.path,
                code: diagnostic.code.as_str(),
                title: diagnostic.code.title(),
                severity: diagnostic.severity(),
                message: &diagnostic.message,
                help: diagnostic.help.as_deref(),
                location: diagnostic.span.map(|span| label(file.source, &lines, &diagnostic.label, span)),
                related: diagnostic.related.iter().map(|related| label(file.source, &lines, &related.message, related.span)).collect(),
            });
        }
    }
    serde_json::to_string_pretty(&all).unwrap_or_else(|_| "[]".to_string()) + "\n"
}

fn label<'a>(source: &str, lines: &crate::span::LineIndex, message: &'a str, span: crate::span::Span) -> JsonLabel<'a> {
    let (line, column) = lines.line_col(source, span.start);
    JsonLabel { message, line, column, start: span.start, end: span.end }
}
