use pest::Parser;

use super::ast::Ast;
use super::grammar::{RecipeGrammar, Rule};
use super::lower::lower_item;
use super::syntax_error::syntax_error;
use crate::diagnostics::Diagnostic;

/// Words that start a top-level item; after a syntax error, parsing resumes at the next line that
/// starts with one of them, so that one run reports the errors of every item.
const ITEM_KEYWORDS: &[&str] = &["recipe", "seed", "backbone", "data", "cut", "head", "groups", "stage", "export", "publish", "checkpoint", "loss", "ema", "tta"];

/// Parse a whole recipe, item by item, recovering after errors.
pub fn parse(source: &str) -> (Ast, Vec<Diagnostic>) {
    let mut ast = Ast::default();
    let mut diagnostics = Vec::new();
    // A byte-order mark (editors on Windows write one) is not part of the recipe.
    let mut offset = if source.starts_with('\u{FEFF}') { '\u{FEFF}'.len_utf8() } else { 0 };
    while offset < source.len() {
        let rest = &source[offset..];
        if RecipeGrammar::parse(Rule::only_trivia, rest).is_ok() {
            break;
        }
        match RecipeGrammar::parse(Rule::next_item, rest) {
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
                diagnostics.push(diagnostic);
                // Resume after the line that holds the error, never at the item that failed again.
                offset = resume_point(source, position.max(offset));
            }
        }
    }
    (ast, diagnostics)
}

/// The start of the first line after `offset` that begins (unindented) with an item keyword.
fn resume_point(source: &str, offset: usize) -> usize {
    let mut line_start = match source[offset..].find('\n') {
        Some(newline) => offset + newline + 1,
        None => return source.len(),
    };
    while line_start < source.len() {
        let line = &source[line_start..];
        let first_word: &str = line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).next().unwrap_or("");
        if ITEM_KEYWORDS.contains(&first_word) {
            return line_start;
        }
        line_start = match line.find('\n') {
            Some(newline) => line_start + newline + 1,
            None => source.len(),
        };
    }
    source.len()
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
