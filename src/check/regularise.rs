//! `regularise l2sp α β  bss [η] [k]`: each term at most once, its numbers in range.

use crate::check::recipe::{Bss, L2Sp};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Spanned;
use crate::syntax::ast::Regulariser;

/// BSS's defaults, the paper's and TLlib's: η 0.001 on the single smallest singular value.
const BSS_ETA: f64 = 0.001;
const BSS_K: usize = 1;

/// Most singular values BSS may shrink: a batch has at most its size of them, and the paper's
/// gains are at k = 1 or 2.
const BSS_MAX_K: f64 = 16.0;

/// The L2-SP and BSS settings the terms ask for; a term out of range is reported and left off.
pub fn check(terms: &[Spanned<Regulariser>], diagnostics: &mut Vec<Diagnostic>) -> (Option<L2Sp>, Option<Bss>) {
    let (mut l2sp, mut bss) = (None, None);
    let mut seen: Vec<(&str, crate::span::Span)> = Vec::new();
    for term in terms {
        let name = match term.value {
            Regulariser::L2Sp { .. } => "l2sp",
            Regulariser::Bss { .. } => "bss",
        };
        if let Some((_, first)) = seen.iter().find(|(seen, _)| *seen == name) {
            diagnostics.push(crate::check::items::duplicate(name, term.span, *first));
            continue;
        }
        seen.push((name, term.span));
        match &term.value {
            Regulariser::L2Sp { alpha, beta } => {
                let mut valid = true;
                for (value, name) in [(alpha, "α"), (beta, "β")] {
                    if !(0.0..=10.0).contains(&value.value) {
                        valid = false;
                        diagnostics.push(
                            Diagnostic::new(Code::ValueOutOfRange, format!("L2-SP's {name} is 0 to 10, not {}", value.value))
                                .at(value.span, "not a strength")
                                .with_help("e.g. `regularise l2sp 0.01 0.01`; 0 turns a term off"),
                        );
                    }
                }
                l2sp = valid.then_some(L2Sp { alpha: alpha.value, beta: beta.value });
            }
            Regulariser::Bss { eta, k } => {
                let mut valid = true;
                if let Some(eta) = eta.as_ref().filter(|eta| !(0.0..=1.0).contains(&eta.value)) {
                    valid = false;
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("BSS's η is 0 to 1, not {}", eta.value))
                            .at(eta.span, "not a strength")
                            .with_help("e.g. `regularise bss 0.001` (the paper's default); 0 turns it off"),
                    );
                }
                if let Some(k) = k.as_ref().filter(|k| k.value.fract() != 0.0 || !(1.0..=BSS_MAX_K).contains(&k.value)) {
                    valid = false;
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("BSS shrinks 1 to {BSS_MAX_K} singular values, not {}", k.value))
                            .at(k.span, "not a count of singular values")
                            .with_help("e.g. `regularise bss 0.001 1`: the smallest one, as the paper does"),
                    );
                }
                let eta = eta.as_ref().map_or(BSS_ETA, |eta| eta.value);
                let k = k.as_ref().map_or(BSS_K, |k| k.value as usize);
                bss = (valid && eta > 0.0).then_some(Bss { eta, k });
            }
        }
    }
    (l2sp, bss)
}
