use pest::Parser;

use super::ast::Ast;
use super::grammar::{RecipeGrammar, Rule};
use super::lower::lower_item;
use super::syntax_error::syntax_error;
use crate::diagnostics::Diagnostic;
use crate::span::Span;

/// Words that start a top-level item; after a syntax error, parsing resumes at the next line that
/// starts with one of them, so that one run reports the errors of every item.
const ITEM_KEYWORDS: &[&str] = &["recipe", "seed", "backbone", "data", "cut", "head", "groups", "stage", "export", "publish", "checkpoint", "loss", "ema", "tta", "predict", "sweep"];

/// Parse a whole recipe, item by item, recovering after errors. Linear in the source: each item
/// is parsed within its window (up to the next line that starts an item), because pest's error
/// builder walks the input it was given from the end, which over the whole rest of a large recipe
/// would make every error cost the size of the file.
pub fn parse(source: &str) -> (Ast, Vec<Diagnostic>) {
    let mut ast = Ast::default();
    let mut diagnostics = Vec::new();
    // A byte-order mark (editors on Windows write one) is not part of the recipe.
    let mut offset = if source.starts_with('\u{FEFF}') { '\u{FEFF}'.len_utf8() } else { 0 };
    loop {
        offset += trivia_len(&source[offset..]);
        if offset >= source.len() {
            break;
        }
        let rest = &source[offset..];
        let window = &rest[..item_window(rest)];
        match RecipeGrammar::parse(Rule::next_item, window) {
            Ok(mut pairs) => {
                let next_item = pairs.next().expect("next_item always yields its own pair");
                let consumed = next_item.as_span().end();
                let item = next_item.into_inner().next().expect("next_item always holds one item");
                let (lowered, mut problems) = lower_item(item, offset);
                ast.items.extend(lowered);
                diagnostics.append(&mut problems);
                // A zero-width match cannot happen (every item starts with a keyword), but never loop.
                offset += consumed.max(1);
            }
            Err(error) => {
                let (diagnostic, position) = syntax_error(&error, source, offset);
                diagnostics.push(unclosed_delimiter(diagnostic, &source[offset..offset + window.len()], offset));
                // Resume at the next item when the error is where this item's window ends (an
                // unclosed block), else after the line that holds the error; never at the item
                // that failed again.
                let window_end = offset + window.len();
                offset = if position >= window_end { window_end } else { resume_point(source, position.max(offset)) };
            }
        }
    }
    (ast, diagnostics)
}

/// Bytes of whitespace and `#` comments at the start of `text` (the grammar's trivia).
fn trivia_len(text: &str) -> usize {
    let bytes = text.as_bytes();
    let mut at = 0;
    while at < bytes.len() {
        match bytes[at] {
            b' ' | b'\t' | b'\r' | b'\n' => at += 1,
            b'#' => at += text[at..].find('\n').unwrap_or(text.len() - at),
            _ => break,
        }
    }
    at
}

/// Whether `line` starts an item: an item keyword at its very start, not followed by `:` (a
/// group definition such as `head: head` may start a line inside `groups { … }`).
fn starts_item(line: &str) -> bool {
    let word: &str = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
    ITEM_KEYWORDS.contains(&word) && !line[word.len()..].trim_start_matches([' ', '\t']).starts_with(':')
}

/// The start of the first line after byte `from` of `text` that starts an item, if any.
fn next_item_line(text: &str, from: usize) -> Option<usize> {
    let mut line_start = from + text[from..].find('\n')? + 1;
    while line_start < text.len() {
        if starts_item(&text[line_start..]) {
            return Some(line_start);
        }
        line_start += text[line_start..].find('\n')? + 1;
    }
    None
}

/// The length of the first item's window in `rest`: up to the next line that starts an item.
fn item_window(rest: &str) -> usize {
    next_item_line(rest, 0).unwrap_or(rest.len())
}

/// A syntax error in an item that opens a `{` or a `"` and never closes it also points at the
/// opening one: the place to fix is usually there, not where the parser gave up. `item` is the
/// item's window (up to the next item), which starts at byte `item_start` of the file.
fn unclosed_delimiter(diagnostic: Diagnostic, item: &str, item_start: usize) -> Diagnostic {
    let at = |index: usize| Span::new(item_start + index, item_start + index + 1);
    // The parser gave up at the opening quote itself: say what is wrong there, once.
    let unclosed_string = |mut diagnostic: Diagnostic, quote: usize| {
        if diagnostic.span.map(|span| span.start) == Some(item_start + quote) {
            diagnostic.message = "this string has no closing quote".to_string();
            diagnostic.label = "the string starts here and is never closed".to_string();
            diagnostic.help = Some("strings end on their line: add the closing `\"`".to_string());
            diagnostic
        } else {
            diagnostic.with_related(at(quote), "this string is never closed")
        }
    };
    let mut open_braces: Vec<usize> = Vec::new();
    let mut open_quote: Option<usize> = None;
    let mut chars = item.char_indices();
    while let Some((index, c)) = chars.next() {
        match (open_quote, c) {
            // Strings end at their line: a quote still open there was never closed.
            (Some(quote), '\n') => return unclosed_string(diagnostic, quote),
            (Some(_), '\\') => {
                chars.next();
            }
            (Some(_), '"') => open_quote = None,
            (Some(_), _) => {}
            (None, '"') => open_quote = Some(index),
            (None, '#') => {
                // A comment runs to the end of its line.
                for (_, c) in chars.by_ref() {
                    if c == '\n' {
                        break;
                    }
                }
            }
            (None, '{') => open_braces.push(index),
            (None, '}') => {
                open_braces.pop();
            }
            (None, _) => {}
        }
    }
    if let Some(quote) = open_quote {
        return unclosed_string(diagnostic, quote);
    }
    match open_braces.last() {
        Some(brace) => diagnostic.with_related(at(*brace), "this `{` is never closed"),
        None => diagnostic,
    }
}

/// The start of the first line after `offset` that begins (unindented) with an item keyword.
fn resume_point(source: &str, offset: usize) -> usize {
    next_item_line(source, offset).unwrap_or(source.len())
}

#[cfg(test)]
mod tests {
    use super::parse;
    use crate::syntax::ast::ItemKind;

    #[test]
    fn reports_every_broken_item_and_keeps_the_good_ones() {
        let source = "recipe \"x\"\nseed forty\nbackbone resnet18\nstage a { epochs }\ncut after layer4\n";
        let (ast, diagnostics) = parse(source);
        assert_eq!(diagnostics.len(), 2, "{diagnostics:#?}");
        let kinds: Vec<_> = ast.items.iter().map(|item| std::mem::discriminant(&item.kind)).collect();
        assert_eq!(kinds.len(), 3);
        assert!(matches!(ast.items[2].kind, ItemKind::Cut(_)));
    }

    #[test]
    fn comments_and_blank_files_are_fine() {
        assert!(parse("").1.is_empty());
        assert!(parse("# only a comment\n\n").1.is_empty());
    }
}
