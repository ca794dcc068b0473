//! Byte ranges into a recipe's source text.

use serde::Serialize;

/// A half-open byte range `start..end` into the source a recipe was parsed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize)]
pub struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }

    pub fn len(&self) -> usize {
        self.end.saturating_sub(self.start)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The smallest span covering both.
    pub fn to(self, other: Span) -> Span {
        Span::new(self.start.min(other.start), self.end.max(other.end))
    }

    /// 1-based line and column of the start. Scans the source: for one lookup; renderers that
    /// place many diagnostics use a `LineIndex`.
    pub fn line_col(&self, source: &str) -> (usize, usize) {
        let upto = &source[..floor_char_boundary(source, self.start.min(source.len()))];
        let line = upto.matches('\n').count() + 1;
        let col = upto.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1;
        (line, col)
    }
}

/// Where every line of a source starts, so that placing a diagnostic costs a binary search and
/// the length of its line, not the length of the file (lint stays linear in the recipe's size).
#[derive(Debug, Clone)]
pub struct LineIndex {
    /// Byte offset of each line's first byte; the first is 0.
    starts: Vec<usize>,
}

impl LineIndex {
    pub fn new(source: &str) -> LineIndex {
        let starts = std::iter::once(0).chain(source.bytes().enumerate().filter(|(_, byte)| *byte == b'\n').map(|(index, _)| index + 1)).collect();
        LineIndex { starts }
    }

    /// 0-based index of the line holding byte `offset` (offsets past the end are on the last line).
    pub fn line_of(&self, offset: usize) -> usize {
        self.starts.partition_point(|start| *start <= offset).saturating_sub(1)
    }

    /// Byte offset where line `line` (0-based) starts; the source's length past the last line.
    pub fn line_start(&self, line: usize, source: &str) -> usize {
        self.starts.get(line).copied().unwrap_or(source.len())
    }

    pub fn lines(&self) -> usize {
        self.starts.len()
    }

    /// 1-based line and column (in characters) of byte `offset` of `source`.
    pub fn line_col(&self, source: &str, offset: usize) -> (usize, usize) {
        let offset = floor_char_boundary(source, offset.min(source.len()));
        let line = self.line_of(offset);
        let start = self.line_start(line, source).min(offset);
        (line + 1, source[start..offset].chars().count() + 1)
    }
}

/// The largest char boundary at or below `offset`.
fn floor_char_boundary(source: &str, mut offset: usize) -> usize {
    while offset > 0 && !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

/// A value together with where it was written.
#[derive(Debug, Clone, PartialEq)]
pub struct Spanned<T> {
    pub value: T,
    pub span: Span,
}

impl<T> Spanned<T> {
    pub fn new(value: T, span: Span) -> Self {
        Spanned { value, span }
    }
}

#[cfg(test)]
mod tests {
    use super::{LineIndex, Span};

    #[test]
    fn the_index_places_offsets_like_a_scan() {
        let source = "recipe \"é\"\n\nstage a { }\nlast";
        let index = LineIndex::new(source);
        for offset in 0..=source.len() {
            if !source.is_char_boundary(offset) {
                continue;
            }
            let upto = &source[..offset];
            let expected = (upto.matches('\n').count() + 1, upto.rsplit('\n').next().map_or(0, |s| s.chars().count()) + 1);
            assert_eq!(index.line_col(source, offset), expected, "offset {offset}");
        }
        assert_eq!(Span::new(13, 14).line_col(source), (3, 1));
    }
}
