//! AST to checked recipe. No IO (outside facts come through `World`), no burn, never panics; returns
//! the recipe it could build *and* every diagnostic, errors and warnings alike.

mod backbone;
mod batchnorm_training;
mod checker;
mod data;
mod groups;
mod head;
mod missing;
mod regularise;
pub(crate) mod items;
pub mod recipe;
mod runnable;
mod stages;
mod traps;
mod world;

pub use checker::check;
pub use groups::HEAD;
pub use runnable::Runnable;
pub use world::{NoWorld, PathKind, World, ZooCard, ZooLookup};

use crate::diagnostics::Diagnostic;

/// Parse and check in one call: what `lint` does for a file.
pub fn check_source(source: &str, file_stem: &str, world: &dyn World) -> (Option<recipe::Recipe>, Vec<Diagnostic>) {
    let (_, recipe, diagnostics) = parse_and_check(source, file_stem, world);
    (recipe, diagnostics)
}

/// Parse and check, keeping the AST too. Diagnostics come sorted by position.
pub fn parse_and_check(
    source: &str,
    file_stem: &str,
    world: &dyn World,
) -> (crate::syntax::ast::Ast, Option<recipe::Recipe>, Vec<Diagnostic>) {
    let (ast, mut diagnostics) = crate::syntax::parse(source);
    let (recipe, mut more) = check(&ast, file_stem, world);
    // An item that failed to parse is not "missing": its syntax error already says what is wrong.
    let had_syntax_errors = diagnostics.iter().any(|diagnostic| diagnostic.code == crate::diagnostics::Code::SyntaxError);
    more.retain(|diagnostic| !(had_syntax_errors && diagnostic.code == crate::diagnostics::Code::MissingStatement));
    // A number too large for 64 bits is already reported where it is written; the checks that then
    // see it would only quote a number the user never wrote.
    // Spans do not overlap each other, so the overflowed number holding a span is the last one
    // that starts at or before it (a binary search keeps this linear-logarithmic).
    let mut overflowed: Vec<crate::span::Span> =
        diagnostics.iter().filter(|diagnostic| diagnostic.code == crate::diagnostics::Code::ValueOutOfRange).filter_map(|diagnostic| diagnostic.span).collect();
    overflowed.sort_by_key(|span| span.start);
    let inside_overflowed = |span: crate::span::Span| {
        let candidates = overflowed.partition_point(|number| number.start <= span.start);
        candidates > 0 && span.end <= overflowed[candidates - 1].end
    };
    more.retain(|diagnostic| diagnostic.span.is_none_or(|span| !inside_overflowed(span)));
    // A name that a syntax error cut short (`resn` before a Cyrillic `е`) is not unknown: the
    // syntax error right after it says what is wrong.
    let syntax_starts: std::collections::HashSet<usize> = diagnostics
        .iter()
        .filter(|diagnostic| diagnostic.code == crate::diagnostics::Code::SyntaxError)
        .filter_map(|diagnostic| diagnostic.span.map(|span| span.start))
        .collect();
    more.retain(|diagnostic| diagnostic.span.is_none_or(|span| !syntax_starts.contains(&span.end)));
    diagnostics.append(&mut more);
    // A sweep: each value checked as if written in the recipe (its variants have no sweep, so
    // this recursion is one level deep).
    if crate::sweep::sweep_of(&ast).is_some() {
        let base_errors: Vec<Diagnostic> = diagnostics.iter().filter(|diagnostic| diagnostic.is_error()).cloned().collect();
        let check_variant = |text: &str| parse_and_check(text, file_stem, world).2;
        diagnostics.extend(crate::sweep::check(source, &ast, &base_errors, &check_variant));
    }
    sort_in_reading_order(source, &mut diagnostics);
    (ast, recipe, diagnostics)
}

/// Diagnostics in reading order, line by line; on one line an error before the warnings, which
/// usually follow from it (cause before consequence, as Elm orders them).
pub fn sort_in_reading_order(source: &str, diagnostics: &mut [Diagnostic]) {
    let lines = crate::span::LineIndex::new(source);
    diagnostics.sort_by_key(|diagnostic| {
        let start = diagnostic.span.map_or(0, |span| span.start);
        (lines.line_of(start), !diagnostic.is_error(), start, diagnostic.code)
    });
}
