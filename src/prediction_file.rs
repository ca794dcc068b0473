//! Where predictions go (`tlrun predict`, a recipe's `predict … into`): CSV or JSON lines by the
//! file's extension, or an aligned table on stdout. Rows are written as each batch finishes, so a
//! long run's output grows as it goes. Plain IO: no burn.

use std::io::Write;
use std::path::Path;

use crate::diagnostics::{Code, Diagnostic};

/// One image's prediction.
pub struct PredictionRow<'a> {
    pub path: &'a Path,
    /// The predicted class (the evaluation's argmax).
    pub class: usize,
    pub probabilities: &'a [f32],
    /// The true class, for a labelled folder.
    pub truth: Option<usize>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Format {
    Csv,
    JsonLines,
    Table,
}

pub struct PredictionWriter {
    format: Format,
    out: Box<dyn Write>,
    path: Option<std::path::PathBuf>,
    top_k: usize,
    labelled: bool,
    header_written: bool,
    /// The reader of stdout went away (`tlrun predict … | head`): nothing more is written.
    closed: bool,
}

impl PredictionWriter {
    /// `out` ending in `.jsonl`/`.json` writes JSON lines, any other name CSV, none a table on stdout.
    pub fn open(out: Option<&Path>, top_k: usize, labelled: bool) -> Result<PredictionWriter, Diagnostic> {
        let (format, sink): (Format, Box<dyn Write>) = match out {
            None => (Format::Table, Box::new(std::io::stdout())),
            Some(path) => {
                if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
                    std::fs::create_dir_all(parent).map_err(|error| unwritable(path, &error))?;
                }
                let file = std::fs::File::create(path).map_err(|error| unwritable(path, &error))?;
                let json = path.extension().and_then(|extension| extension.to_str()).is_some_and(|extension| matches!(extension, "jsonl" | "json"));
                (if json { Format::JsonLines } else { Format::Csv }, Box::new(std::io::BufWriter::new(file)))
            }
        };
        Ok(PredictionWriter { format, out: sink, path: out.map(Path::to_path_buf), top_k, labelled, header_written: false, closed: false })
    }

    pub fn write(&mut self, row: &PredictionRow<'_>, classes: &[String]) -> Result<(), Diagnostic> {
        let top = top_classes(row.probabilities, self.top_k);
        if self.closed {
            return Ok(());
        }
        let text = match self.format {
            Format::Csv => {
                let mut line = String::new();
                if !self.header_written {
                    line.push_str("path,class,probability");
                    for rank in 2..=self.top_k {
                        line.push_str(&format!(",class_{rank},probability_{rank}"));
                    }
                    if self.labelled {
                        line.push_str(",truth");
                    }
                    line.push('\n');
                }
                line.push_str(&csv_field(&row.path.display().to_string()));
                line.push_str(&format!(",{},{:.6}", csv_field(&classes[row.class]), row.probabilities[row.class]));
                for &class in top.iter().filter(|class| **class != row.class).take(self.top_k - 1) {
                    line.push_str(&format!(",{},{:.6}", csv_field(&classes[class]), row.probabilities[class]));
                }
                if let Some(truth) = row.truth {
                    line.push_str(&format!(",{}", csv_field(&classes[truth])));
                }
                line.push('\n');
                line
            }
            Format::JsonLines => {
                let top_list: Vec<serde_json::Value> = top
                    .iter()
                    .map(|&class| serde_json::json!({ "class": classes[class], "probability": row.probabilities[class] }))
                    .collect();
                let mut object = serde_json::json!({
                    "path": row.path.display().to_string(),
                    "class": classes[row.class],
                    "probability": row.probabilities[row.class],
                    "top": top_list,
                });
                if let Some(truth) = row.truth {
                    object["truth"] = serde_json::Value::String(classes[truth].clone());
                }
                format!("{object}\n")
            }
            Format::Table => {
                let mut line = String::new();
                if !self.header_written {
                    line.push_str(&format!("{:<40} {:<16} {:>7}", "image", "class", "prob"));
                    if self.labelled {
                        line.push_str(&format!("  {:<16}", "truth"));
                    }
                    if self.top_k > 1 {
                        line.push_str("  next");
                    }
                    line.push('\n');
                }
                line.push_str(&format!("{:<40} {:<16} {:>6.1}%", row.path.display(), classes[row.class], 100.0 * row.probabilities[row.class]));
                if let Some(truth) = row.truth {
                    line.push_str(&format!("  {:<16}", classes[truth]));
                }
                let others: Vec<String> = top
                    .iter()
                    .filter(|class| **class != row.class)
                    .take(self.top_k - 1)
                    .map(|&class| format!("{} {:.1}%", classes[class], 100.0 * row.probabilities[class]))
                    .collect();
                if !others.is_empty() {
                    line.push_str(&format!("  {}", others.join(", ")));
                }
                line.push('\n');
                line
            }
        };
        self.header_written = true;
        let written = self.out.write_all(text.as_bytes());
        self.outcome(written)
    }

    pub fn flush(&mut self) -> Result<(), Diagnostic> {
        let flushed = self.out.flush();
        self.outcome(flushed)
    }

    /// Whether stdout's reader went away, so the rest need not be computed.
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// A closed pipe on stdout ends the table quietly, as `ls | head` does; any other error is one.
    fn outcome(&mut self, result: std::io::Result<()>) -> Result<(), Diagnostic> {
        match result {
            Err(error) if self.path.is_none() && error.kind() == std::io::ErrorKind::BrokenPipe => {
                self.closed = true;
                Ok(())
            }
            Err(error) => Err(self.failed(&error)),
            Ok(()) => Ok(()),
        }
    }

    pub fn finish(mut self) -> Result<(), Diagnostic> {
        if !self.header_written && self.format == Format::Csv {
            let written = self.out.write_all(b"path,class,probability\n");
            self.outcome(written)?;
        }
        if self.closed { Ok(()) } else { self.flush() }
    }

    fn failed(&self, error: &std::io::Error) -> Diagnostic {
        match &self.path {
            Some(path) => unwritable(path, error),
            None => Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write to stdout: {error}")),
        }
    }
}

/// Class indices by falling probability, ties by index (the first `k`).
fn top_classes(probabilities: &[f32], k: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..probabilities.len()).collect();
    order.sort_by(|a, b| probabilities[*b].total_cmp(&probabilities[*a]).then(a.cmp(b)));
    order.truncate(k.max(1));
    order
}

/// RFC 4180: quote a field holding a comma, a quote or a line break.
fn csv_field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

/// The confusion matrix as CSV: a header of predicted classes, one row per true class.
pub fn confusion_csv(classes: &[String], confusion: &[Vec<u32>]) -> String {
    let mut text = String::from("true\\predicted");
    for class in classes {
        text.push(',');
        text.push_str(&csv_field(class));
    }
    text.push('\n');
    for (class, row) in classes.iter().zip(confusion) {
        text.push_str(&csv_field(class));
        for count in row {
            text.push_str(&format!(",{count}"));
        }
        text.push('\n');
    }
    text
}

fn unwritable(path: &Path, error: &std::io::Error) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write {}: {error}", path.display()))
        .with_help("check that the folder is writable and the disk has room")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn top_classes_fall_by_probability_and_break_ties_by_index() {
        assert_eq!(top_classes(&[0.1, 0.4, 0.4, 0.1], 3), vec![1, 2, 0]);
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        assert_eq!(csv_field("a,b"), "\"a,b\"");
        assert_eq!(csv_field("say \"hi\""), "\"say \"\"hi\"\"\"");
        assert_eq!(csv_field("plain"), "plain");
    }

    #[test]
    fn the_confusion_matrix_has_a_row_per_true_class() {
        let classes = vec!["a".to_string(), "b".to_string()];
        assert_eq!(confusion_csv(&classes, &[vec![3, 1], vec![0, 2]]), "true\\predicted,a,b\na,3,1\nb,0,2\n");
    }
}
