use super::FileDiagnostics;
use crate::diagnostics::Severity;

/// GitHub Actions workflow commands: one `::error`/`::warning` line per diagnostic, shown inline on PRs.
pub fn render(files: &[FileDiagnostics<'_>]) -> String {
    let mut out = String::new();
    for file in files {
        let lines = crate::span::LineIndex::new(file.source);
        for diagnostic in file.diagnostics {
            let level = match diagnostic.severity() {
                Severity::Error => "error",
                Severity::Warning => "warning",
            };
            let mut properties = vec![format!("file={}", escape_property(file.path))];
            if let Some(span) = diagnostic.span {
                let (line, column) = lines.line_col(file.source, span.start);
                // One line per annotation: a span that runs on is cut at the end of its first line.
                let start = span.start.min(file.source.len());
                let line_end = file.source[start..].find('\n').map_or(file.source.len(), |newline| start + newline);
                let (end_line, end_column) = lines.line_col(file.source, span.end.min(line_end).max(start));
                properties.push(format!("line={line}"));
                properties.push(format!("col={column}"));
                properties.push(format!("endLine={end_line}"));
                properties.push(format!("endColumn={end_column}"));
            }
            properties.push(format!("title={}", escape_property(&format!("{} {}", diagnostic.code, diagnostic.code.title()))));
            let mut message = diagnostic.message.clone();
            if let Some(help) = &diagnostic.help {
                message.push_str(&format!("\nhelp: {help}"));
            }
            out.push_str(&format!("::{level} {}::{}\n", properties.join(","), escape_data(&message)));
        }
    }
    out
}

fn escape_data(text: &str) -> String {
    text.replace('%', "%25").replace('\r', "%0D").replace('\n', "%0A")
}

fn escape_property(text: &str) -> String {
    escape_data(text).replace(':', "%3A").replace(',', "%2C")
}
