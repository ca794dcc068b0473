use super::recipe::{HeadLayer, OutFeatures};
use crate::arch::Architecture;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Spanned;
use crate::syntax::ast::{self, Item, LinearWidth, Pool};

/// Resolve the head's layers against the features the cut leaves: inserts the flatten after the
/// pool and works out every layer's input width.
pub fn check(
    block: Option<(&Item, &[Spanned<ast::HeadLayer>])>,
    architecture: &Architecture,
    kept_layers: usize,
    classes: Option<usize>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<HeadLayer> {
    let (mut features, mut spatial) = architecture.output_after(kept_layers);
    let mut head = Vec::new();
    let Some((item, layers)) = block else {
        // fastai's minimal head: pool what is spatial, then one linear layer to the classes.
        if spatial {
            head.push(HeadLayer::Pool { pool: Pool::Avg });
            head.push(HeadLayer::Flatten);
        } else {
            head.push(HeadLayer::Flatten);
        }
        head.push(HeadLayer::Linear { in_features: features, out_features: OutFeatures::Classes });
        return head;
    };
    if layers.is_empty() {
        diagnostics.push(
            Diagnostic::new(Code::InvalidHead, "the head is empty")
                .at(item.span, "no layers")
                .with_help("a head ends in a linear layer, e.g. `head { pool avg  linear classes }`"),
        );
        return head;
    }
    if !spatial {
        head.push(HeadLayer::Flatten);
    }
    for (index, layer) in layers.iter().enumerate() {
        let is_last = index + 1 == layers.len();
        match &layer.value {
            ast::HeadLayer::Pool(pool) => {
                if !spatial {
                    diagnostics.push(
                        Diagnostic::new(Code::InvalidHead, "nothing left to pool here")
                            .at(layer.span, "features are already flat")
                            .with_help("pool once, first in the head; remove this `pool`"),
                    );
                    continue;
                }
                head.push(HeadLayer::Pool { pool: *pool });
                head.push(HeadLayer::Flatten);
                if *pool == Pool::Concat {
                    features *= 2;
                }
                spatial = false;
            }
            ast::HeadLayer::Dropout(probability) => {
                if !(0.0..1.0).contains(&probability.value) {
                    diagnostics.push(
                        Diagnostic::new(Code::ValueOutOfRange, format!("dropout is a probability in [0, 1), not {}", probability.value))
                            .at(probability.span, "not a probability")
                            .with_help("e.g. `dropout 0.25`"),
                    );
                }
                head.push(HeadLayer::Dropout { probability: probability.value.clamp(0.0, 0.99) });
            }
            other => {
                if spatial {
                    diagnostics.push(
                        Diagnostic::new(Code::InvalidHead, "the features still have height and width here")
                            .at(layer.span, "needs flat features")
                            .with_help("start the head with `pool avg`, `pool max` or `pool concat`"),
                    );
                    spatial = false;
                    head.push(HeadLayer::Pool { pool: Pool::Avg });
                    head.push(HeadLayer::Flatten);
                }
                match other {
                    ast::HeadLayer::BatchNorm => head.push(HeadLayer::BatchNorm { features }),
                    ast::HeadLayer::Relu => head.push(HeadLayer::Relu),
                    ast::HeadLayer::Linear(width) => {
                        let out_features = linear_width(*width, is_last, layer, classes, diagnostics);
                        head.push(HeadLayer::Linear { in_features: features, out_features });
                        if let OutFeatures::Fixed(width) = out_features {
                            features = width;
                        }
                    }
                    _ => {}
                }
            }
        }
    }
    let ends_in_linear = matches!(layers.last().map(|layer| &layer.value), Some(ast::HeadLayer::Linear(_)));
    if !ends_in_linear {
        let last = layers.last().map_or(item.span, |layer| layer.span);
        diagnostics.push(
            Diagnostic::new(Code::InvalidHead, "the head must end in a linear layer")
                .at(last, "the head ends here")
                .with_help("add `linear classes` as the last layer: it outputs one score per class"),
        );
    }
    head
}

fn linear_width(
    width: LinearWidth,
    is_last: bool,
    layer: &Spanned<ast::HeadLayer>,
    classes: Option<usize>,
    diagnostics: &mut Vec<Diagnostic>,
) -> OutFeatures {
    match width {
        LinearWidth::Classes if !is_last => {
            diagnostics.push(
                Diagnostic::new(Code::InvalidHead, "`linear classes` must be the head's last layer")
                    .at(layer.span, "not last")
                    .with_help("give hidden layers a fixed width, e.g. `linear 256`"),
            );
            OutFeatures::Classes
        }
        LinearWidth::Classes => OutFeatures::Classes,
        LinearWidth::Fixed(width) => {
            let Some(width) = u32::try_from(width).ok().filter(|width| *width > 0) else {
                diagnostics.push(
                    Diagnostic::new(Code::ValueOutOfRange, format!("a linear layer needs a positive width, not {width}"))
                        .at(layer.span, "not a width")
                        .with_help("e.g. `linear 256`, or `linear classes` for the last layer"),
                );
                return OutFeatures::Fixed(1);
            };
            if let (true, Some(classes)) = (is_last, classes) {
                if width as usize != classes {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::HeadWidthMismatch,
                            format!("the head outputs {width} scores but the data has {classes} classes"),
                        )
                        .at(layer.span, format!("{width} outputs"))
                        .with_help("write `linear classes` so the width always follows the class folders"),
                    );
                }
            }
            OutFeatures::Fixed(width)
        }
    }
}
