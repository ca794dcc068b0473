//! `regularise l2sp α β  bss [η] [k]  lwf [λ] [T]`: each term at most once, its numbers in range;
//! LwF only where the pretrained network's own classifier can sit on the kept layers.

use crate::check::recipe::{Bss, HeadLayer, L2Sp, Lwf, Pool, Recipe};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Spanned;
use crate::syntax::ast::Regulariser;

/// BSS's defaults, the paper's and TLlib's: η 0.001 on the single smallest singular value.
const BSS_ETA: f64 = 0.001;
const BSS_K: usize = 1;

/// Most singular values BSS may shrink: a batch has at most its size of them, and the paper's
/// gains are at k = 1 or 2.
const BSS_MAX_K: f64 = 16.0;

/// LwF's defaults, the paper's: λ 1, T 2.
const LWF_LAMBDA: f64 = 1.0;
const LWF_TEMPERATURE: f64 = 2.0;

/// What the terms ask for; a term out of range is reported and left off.
pub struct Regularisers {
    pub l2sp: Option<L2Sp>,
    pub bss: Option<Bss>,
    /// With the term's span, for [`check_lwf_fits`].
    pub lwf: Option<(Lwf, crate::span::Span)>,
}

pub fn check(terms: &[Spanned<Regulariser>], diagnostics: &mut Vec<Diagnostic>) -> Regularisers {
    let (mut l2sp, mut bss, mut lwf) = (None, None, None);
    let mut seen: Vec<(&str, crate::span::Span)> = Vec::new();
    for term in terms {
        let name = match term.value {
            Regulariser::L2Sp { .. } => "l2sp",
            Regulariser::Bss { .. } => "bss",
            Regulariser::Lwf { .. } => "lwf",
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
                    valid &= in_range(Some(value), |x| (0.0..=10.0).contains(&x), |x| format!("L2-SP's {name} is 0 to 10, not {x}"), "not a strength", "e.g. `regularise l2sp 0.01 0.01`; 0 turns a term off", diagnostics);
                }
                l2sp = valid.then_some(L2Sp { alpha: alpha.value, beta: beta.value });
            }
            Regulariser::Bss { eta, k } => {
                // `&`, not `&&`: both numbers are reported.
                let valid = in_range(eta.as_ref(), |x| (0.0..=1.0).contains(&x), |x| format!("BSS's η is 0 to 1, not {x}"), "not a strength", "e.g. `regularise bss 0.001` (the paper's default); 0 turns it off", diagnostics)
                    & in_range(
                        k.as_ref(),
                        |x| x.fract() == 0.0 && (1.0..=BSS_MAX_K).contains(&x),
                        |x| format!("BSS shrinks 1 to {BSS_MAX_K} singular values, not {x}"),
                        "not a count of singular values",
                        "e.g. `regularise bss 0.001 1`: the smallest one, as the paper does",
                        diagnostics,
                    );
                let eta = eta.as_ref().map_or(BSS_ETA, |eta| eta.value);
                let k = k.as_ref().map_or(BSS_K, |k| k.value as usize);
                bss = (valid && eta > 0.0).then_some(Bss { eta, k });
            }
            Regulariser::Lwf { lambda, temperature } => {
                let valid = in_range(lambda.as_ref(), |x| (0.0..=100.0).contains(&x), |x| format!("LwF's λ is 0 to 100, not {x}"), "not a strength", "e.g. `regularise lwf 1 2` (the paper's λ and T); 0 turns it off", diagnostics)
                    & in_range(
                        temperature.as_ref(),
                        |t| t > 0.0 && t <= 20.0,
                        |t| format!("LwF's temperature is above 0 and at most 20, not {t}"),
                        "not a temperature",
                        "e.g. `regularise lwf 1 2`: T 2 softens the pretrained classifier's outputs as the paper does",
                        diagnostics,
                    );
                let lambda = lambda.as_ref().map_or(LWF_LAMBDA, |lambda| lambda.value);
                let temperature = temperature.as_ref().map_or(LWF_TEMPERATURE, |t| t.value);
                lwf = (valid && lambda > 0.0).then_some((Lwf { lambda, temperature }, term.span));
            }
        }
    }
    Regularisers { l2sp, bss, lwf }
}

/// Whether `value` (when written) passes `ok`; if not, TL2007 on it, saying `message(value)`.
fn in_range(
    value: Option<&Spanned<f64>>,
    ok: impl Fn(f64) -> bool,
    message: impl Fn(f64) -> String,
    label: &str,
    help: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> bool {
    match value.filter(|value| !ok(value.value)) {
        Some(value) => {
            diagnostics.push(Diagnostic::new(Code::ValueOutOfRange, message(value.value)).at(value.span, label).with_help(help));
            false
        }
        None => true,
    }
}

/// LwF distils the pretrained network's own classifier, which takes the average-pooled output of
/// the backbone's last layer: the backbone must be pretrained, kept whole, and the head must
/// start with `pool avg` (whose flat output is that classifier's input). Whether the weights
/// file holds the classifier is known only when it is read (TL4006 then).
pub fn check_lwf_fits(recipe: &Recipe, span: crate::span::Span, diagnostics: &mut Vec<Diagnostic>) -> bool {
    let architecture = recipe.backbone.architecture;
    let whole = architecture.layer_index("avgpool") == Some(recipe.kept_layers);
    let pooled = matches!(recipe.head.first(), Some(HeadLayer::Pool { pool: Pool::Avg }));
    let reason = if !recipe.backbone.is_pretrained() {
        Some("the backbone starts from random weights (`from none`): there is no such classifier")
    } else if !whole {
        Some("the cut removes layers, and that classifier reads the last layer's pooled output")
    } else if !pooled {
        Some("the head does not start with `pool avg`, and that classifier reads average-pooled features")
    } else {
        None
    };
    if let Some(reason) = reason {
        diagnostics.push(
            Diagnostic::new(Code::LwfWithoutClassifier, format!("`lwf` keeps the pretrained classifier's outputs, but {reason}"))
                .at(span, "needs the pretrained classifier")
                .with_help("keep every layer (no `cut`, or `cut after` the last stage), start the head with `pool avg`, and load pretrained weights; or use `regularise l2sp` or `bss`, which need no classifier"),
        );
    }
    reason.is_none()
}
