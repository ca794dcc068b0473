//! Characters that look like the ASCII a recipe needs, or cannot be seen at all: named by code
//! point in syntax errors, as rustc names them, so that `“data”` or a zero-width space is found
//! without a hex editor.

/// The character's Unicode name and the ASCII text it is probably meant to be ("" for
/// invisible characters that should simply go).
pub fn lookalike(c: char) -> Option<(&'static str, &'static str)> {
    Some(match c {
        '\u{201C}' => ("LEFT DOUBLE QUOTATION MARK", "\""),
        '\u{201D}' => ("RIGHT DOUBLE QUOTATION MARK", "\""),
        '\u{201E}' => ("DOUBLE LOW-9 QUOTATION MARK", "\""),
        '\u{00AB}' => ("LEFT-POINTING DOUBLE ANGLE QUOTATION MARK", "\""),
        '\u{00BB}' => ("RIGHT-POINTING DOUBLE ANGLE QUOTATION MARK", "\""),
        '\u{FF02}' => ("FULLWIDTH QUOTATION MARK", "\""),
        '\u{2018}' => ("LEFT SINGLE QUOTATION MARK", "'"),
        '\u{2019}' => ("RIGHT SINGLE QUOTATION MARK", "'"),
        '\u{200B}' => ("ZERO WIDTH SPACE", ""),
        '\u{200C}' => ("ZERO WIDTH NON-JOINER", ""),
        '\u{200D}' => ("ZERO WIDTH JOINER", ""),
        '\u{2060}' => ("WORD JOINER", ""),
        '\u{FEFF}' => ("ZERO WIDTH NO-BREAK SPACE (a byte-order mark)", ""),
        '\u{0000}' => ("NULL", ""),
        '\u{00A0}' => ("NO-BREAK SPACE", " "),
        '\u{2007}' => ("FIGURE SPACE", " "),
        '\u{202F}' => ("NARROW NO-BREAK SPACE", " "),
        '\u{3000}' => ("IDEOGRAPHIC SPACE", " "),
        '\u{2013}' => ("EN DASH", "-"),
        '\u{2014}' => ("EM DASH", "-"),
        '\u{2212}' => ("MINUS SIGN", "-"),
        '\u{2192}' => ("RIGHTWARDS ARROW", "->"),
        '\u{FF5B}' => ("FULLWIDTH LEFT CURLY BRACKET", "{"),
        '\u{FF5D}' => ("FULLWIDTH RIGHT CURLY BRACKET", "}"),
        '\u{FF1A}' => ("FULLWIDTH COLON", ":"),
        '\u{0430}' => ("CYRILLIC SMALL LETTER A", "a"),
        '\u{0435}' => ("CYRILLIC SMALL LETTER IE", "e"),
        '\u{043E}' => ("CYRILLIC SMALL LETTER O", "o"),
        '\u{0440}' => ("CYRILLIC SMALL LETTER ER", "p"),
        '\u{0441}' => ("CYRILLIC SMALL LETTER ES", "c"),
        '\u{0443}' => ("CYRILLIC SMALL LETTER U", "y"),
        '\u{0445}' => ("CYRILLIC SMALL LETTER HA", "x"),
        '\u{0456}' => ("CYRILLIC SMALL LETTER BYELORUSSIAN-UKRAINIAN I", "i"),
        '\u{0455}' => ("CYRILLIC SMALL LETTER DZE", "s"),
        '\u{0458}' => ("CYRILLIC SMALL LETTER JE", "j"),
        '\u{0501}' => ("CYRILLIC SMALL LETTER KOMI DE", "d"),
        '\u{04BB}' => ("CYRILLIC SMALL LETTER SHHA", "h"),
        '\u{04CF}' => ("CYRILLIC SMALL LETTER PALOCHKA", "l"),
        '\u{0461}' => ("CYRILLIC SMALL LETTER OMEGA", "w"),
        '\u{051B}' => ("CYRILLIC SMALL LETTER QA", "q"),
        '\u{0412}' => ("CYRILLIC CAPITAL LETTER VE", "B"),
        '\u{041A}' => ("CYRILLIC CAPITAL LETTER KA", "K"),
        '\u{041C}' => ("CYRILLIC CAPITAL LETTER EM", "M"),
        '\u{041D}' => ("CYRILLIC CAPITAL LETTER EN", "H"),
        '\u{0422}' => ("CYRILLIC CAPITAL LETTER TE", "T"),
        '\u{0425}' => ("CYRILLIC CAPITAL LETTER HA", "X"),
        '\u{0405}' => ("CYRILLIC CAPITAL LETTER DZE", "S"),
        '\u{0406}' => ("CYRILLIC CAPITAL LETTER BYELORUSSIAN-UKRAINIAN I", "I"),
        '\u{0408}' => ("CYRILLIC CAPITAL LETTER JE", "J"),
        '\u{03B1}' => ("GREEK SMALL LETTER ALPHA", "a"),
        '\u{03B9}' => ("GREEK SMALL LETTER IOTA", "i"),
        '\u{03BD}' => ("GREEK SMALL LETTER NU", "v"),
        '\u{03C1}' => ("GREEK SMALL LETTER RHO", "p"),
        '\u{0392}' => ("GREEK CAPITAL LETTER BETA", "B"),
        '\u{0395}' => ("GREEK CAPITAL LETTER EPSILON", "E"),
        '\u{0397}' => ("GREEK CAPITAL LETTER ETA", "H"),
        '\u{0399}' => ("GREEK CAPITAL LETTER IOTA", "I"),
        '\u{039A}' => ("GREEK CAPITAL LETTER KAPPA", "K"),
        '\u{039C}' => ("GREEK CAPITAL LETTER MU", "M"),
        '\u{039D}' => ("GREEK CAPITAL LETTER NU", "N"),
        '\u{039F}' => ("GREEK CAPITAL LETTER OMICRON", "O"),
        '\u{03A1}' => ("GREEK CAPITAL LETTER RHO", "P"),
        '\u{03A4}' => ("GREEK CAPITAL LETTER TAU", "T"),
        '\u{03A7}' => ("GREEK CAPITAL LETTER CHI", "X"),
        '\u{0131}' => ("LATIN SMALL LETTER DOTLESS I", "i"),
        '\u{2024}' => ("ONE DOT LEADER", "."),
        '\u{FF0C}' => ("FULLWIDTH COMMA", ","),
        '\u{FF0E}' => ("FULLWIDTH FULL STOP", "."),
        '\u{00AD}' => ("SOFT HYPHEN", ""),
        '\u{2028}' => ("LINE SEPARATOR", ""),
        '\u{2029}' => ("PARAGRAPH SEPARATOR", ""),
        '\u{202E}' => ("RIGHT-TO-LEFT OVERRIDE", ""),
        '\u{0410}' => ("CYRILLIC CAPITAL LETTER A", "A"),
        '\u{0415}' => ("CYRILLIC CAPITAL LETTER IE", "E"),
        '\u{041E}' => ("CYRILLIC CAPITAL LETTER O", "O"),
        '\u{0420}' => ("CYRILLIC CAPITAL LETTER ER", "P"),
        '\u{0421}' => ("CYRILLIC CAPITAL LETTER ES", "C"),
        '\u{03BF}' => ("GREEK SMALL LETTER OMICRON", "o"),
        '\u{0391}' => ("GREEK CAPITAL LETTER ALPHA", "A"),
        _ => return None,
    })
}

/// `text` as a syntax error's "found …" shows it: quoted when it can be read; a character that
/// cannot be seen (a zero-width space, NUL, a control character) by its code point, so that the
/// message never prints it raw.
pub fn shown(text: &str) -> String {
    match text.chars().next() {
        Some(c) if is_invisible(c) => match lookalike(c) {
            Some((name, _)) => format!("U+{:04X} {name}", u32::from(c)),
            None => format!("U+{:04X}", u32::from(c)),
        },
        Some(c) if !c.is_ascii() => format!("`{c}` (U+{:04X})", u32::from(c)),
        _ => format!("`{text}`"),
    }
}

fn is_invisible(c: char) -> bool {
    c.is_control() || c.is_whitespace() || matches!(lookalike(c), Some((_, "")))
}

/// For the first character of `text` that is not printable ASCII: a sentence naming it, as
/// "`“` (U+201C LEFT DOUBLE QUOTATION MARK) looks like `"` but is not".
pub fn describe_first(text: &str) -> Option<String> {
    let c = text.chars().find(|c| !(c.is_ascii_graphic() || *c == ' ' || *c == '\n' || *c == '\t' || *c == '\r'))?;
    let code = format!("U+{:04X}", u32::from(c));
    Some(match lookalike(c) {
        Some((name, "")) => format!("an invisible character, {code} {name}, is here: delete it"),
        Some((name, meant)) => format!("`{c}` ({code} {name}) looks like `{meant}` but is not: type `{meant}`"),
        None if c.is_control() => format!("a control character, {code}, is here: delete it"),
        None => format!("`{c}` ({code}) is not part of the recipe language, which is ASCII outside strings and comments"),
    })
}

#[cfg(test)]
mod tests {
    use super::describe_first;

    #[test]
    fn names_lookalikes_and_invisible_characters() {
        assert_eq!(describe_first("“data"), Some("`“` (U+201C LEFT DOUBLE QUOTATION MARK) looks like `\"` but is not: type `\"`".into()));
        assert!(describe_first("a\u{200B}b").unwrap().contains("U+200B ZERO WIDTH SPACE"));
        assert!(describe_first("resn\u{0435}t18").unwrap().contains("CYRILLIC SMALL LETTER IE) looks like `e`"));
        assert!(describe_first("x\u{0000}").unwrap().contains("U+0000 NULL"));
        assert_eq!(describe_first("plain ascii"), None);
        assert!(describe_first("\u{0455}pread").unwrap().contains("looks like `s`"));
    }

    #[test]
    fn found_text_never_prints_an_invisible_character_raw() {
        use super::shown;
        assert_eq!(shown("\u{0000}"), "U+0000 NULL");
        assert_eq!(shown("\u{200B}"), "U+200B ZERO WIDTH SPACE");
        assert_eq!(shown("\u{0007}"), "U+0007");
        assert_eq!(shown("\u{0455}"), "`\u{0455}` (U+0455)");
        assert_eq!(shown("epoch"), "`epoch`");
    }
}
