use super::recipe::{Backbone, Weights};
use super::world::{World, ZooLookup};
use crate::arch::{self, Stats};
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Spanned;
use crate::syntax::ast::{BackboneDecl, Stat, WeightsSource};

/// Resolve the architecture and where its weights and statistics come from.
pub fn check(decl: &BackboneDecl, world: &dyn World, diagnostics: &mut Vec<Diagnostic>) -> Option<Backbone> {
    let Some(architecture) = arch::lookup(&decl.architecture.value) else {
        diagnostics.push(
            Diagnostic::new(Code::UnknownArchitecture, format!("unknown architecture `{}`", decl.architecture.value))
                .at(decl.architecture.span, "not a built-in architecture")
                .with_suggestion(&decl.architecture.value, arch::names(), "built-in architectures"),
        );
        return None;
    };

    let mut stats = architecture.default_stats.clone();
    let mut source_data = None;
    let mut source_valid = None;
    let weights = match decl.weights.as_ref().map(|source| &source.value) {
        None | Some(WeightsSource::None) => Weights::Random,
        Some(WeightsSource::File(path)) => Weights::File(path.value.clone()),
        Some(WeightsSource::Recipe(path)) => {
            if let Some(upstream) = world.recipe_stats(&path.value) {
                stats = upstream;
            }
            Weights::Recipe(path.value.clone())
        }
        Some(WeightsSource::Zoo(entry)) => {
            match world.zoo_entry(&entry.value) {
                ZooLookup::Found(card) => {
                    if card.architecture != architecture.name {
                        diagnostics.push(
                            Diagnostic::new(
                                Code::ZooArchitectureMismatch,
                                format!(
                                    "zoo entry `{}` holds `{}` weights, not `{}`",
                                    entry.value, card.architecture, architecture.name
                                ),
                            )
                            .at(entry.span, format!("weights for `{}`", card.architecture))
                            .with_related(decl.architecture.span, "backbone declared here")
                            .with_help(format!("write `backbone {} from zoo \"{}\"`", card.architecture, entry.value)),
                        );
                    }
                    stats = card.stats;
                    source_data = card.source;
                    source_valid = card.source_valid;
                }
                ZooLookup::Missing { available } => diagnostics.push(unknown_zoo_entry(entry, &available)),
                ZooLookup::Unavailable if world.strict() => diagnostics.push(
                    Diagnostic::new(Code::UnknownZooEntry, format!("no zoo to find `{}` in", entry.value))
                        .at(entry.span, "zoo not found")
                        .with_help("point `--zoo` or TLRUN_ZOO at the zoo folder, or import the entry"),
                ),
                ZooLookup::Unavailable => {}
            }
            Weights::Zoo(entry.value.clone())
        }
    };

    apply_overrides(&decl.stats, &mut stats, diagnostics);
    Some(Backbone { architecture, weights, stats, source_data, source_valid })
}

fn unknown_zoo_entry(entry: &Spanned<String>, available: &[String]) -> Diagnostic {
    Diagnostic::new(Code::UnknownZooEntry, format!("the zoo has no entry `{}`", entry.value))
        .at(entry.span, "not in the zoo")
        .with_suggestion(&entry.value, available.iter().map(String::as_str), "zoo entries")
}

/// `backbone … { mean … std … size … channels … }` overrides or supplies the pretraining stats.
fn apply_overrides(overrides: &[Spanned<Stat>], stats: &mut Stats, diagnostics: &mut Vec<Diagnostic>) {
    let mut seen: Vec<(&'static str, crate::span::Span)> = Vec::new();
    let overrides: Vec<&Spanned<Stat>> = overrides
        .iter()
        .filter(|stat| {
            let keyword = match stat.value {
                Stat::Mean(_) => "mean",
                Stat::Std(_) => "std",
                Stat::Size(_) => "size",
                Stat::Channels(_) => "channels",
            };
            if let Some((_, first)) = seen.iter().find(|(word, _)| *word == keyword) {
                diagnostics.push(super::items::duplicate(keyword, stat.span, *first));
                return false;
            }
            seen.push((keyword, stat.span));
            true
        })
        .collect();
    for stat in &overrides {
        match &stat.value {
            Stat::Channels(channels) => {
                if channels.value == 1 || channels.value == 3 {
                    stats.channels = channels.value as u32;
                } else {
                    diagnostics.push(channels_error(channels));
                }
            }
            Stat::Size(size) => match image_side(size.value) {
                Some(size) => stats.input_size = size,
                None => diagnostics.push(size_error(size)),
            },
            Stat::Mean(_) | Stat::Std(_) => {}
        }
    }
    for stat in &overrides {
        match &stat.value {
            Stat::Mean(values) => {
                if let Some(values) = check_channel_values(values, stats.channels, "mean", stat.span, false, diagnostics) {
                    stats.mean = values;
                }
            }
            Stat::Std(values) => {
                if let Some(values) = check_channel_values(values, stats.channels, "std", stat.span, true, diagnostics) {
                    stats.std = values;
                }
            }
            _ => {}
        }
    }
}

/// `value` when it is 1..=`limit`.
pub fn bounded_u32(value: i64, limit: u32) -> Option<u32> {
    u32::try_from(value).ok().filter(|value| (1..=limit).contains(value))
}

/// An image side within `crate::limits::MAX_IMAGE_SIDE`.
pub fn image_side(value: i64) -> Option<u32> {
    bounded_u32(value, crate::limits::MAX_IMAGE_SIDE)
}

pub fn size_error(size: &Spanned<i64>) -> Diagnostic {
    let limit = crate::limits::MAX_IMAGE_SIDE;
    Diagnostic::new(Code::ValueOutOfRange, format!("an image size must be 1..{limit} pixels, not {}", size.value))
        .at(size.span, format!("not in 1..{limit}"))
        .with_help("write the side in pixels, e.g. `size 224`")
}

pub fn channels_error(channels: &Spanned<i64>) -> Diagnostic {
    Diagnostic::new(Code::ValueOutOfRange, format!("images have 1 or 3 channels, not {}", channels.value))
        .at(channels.span, "not 1 or 3")
        .with_help("`channels 1` for grayscale, `channels 3` for RGB")
}

/// One value per channel (and each positive, for std).
pub fn check_channel_values(
    values: &[Spanned<f64>],
    channels: u32,
    what: &str,
    span: crate::span::Span,
    positive: bool,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Vec<f64>> {
    let mut ok = true;
    if values.len() != channels as usize {
        diagnostics.push(
            Diagnostic::new(
                Code::ValueOutOfRange,
                format!("`{what}` needs one value per channel: {channels}, not {}", values.len()),
            )
            .at(span, format!("{} values", values.len()))
            .with_help(format!("the images have {channels} channel(s)")),
        );
        ok = false;
    }
    if positive {
        for value in values.iter().filter(|value| value.value <= 0.0) {
            diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("a standard deviation must be positive, not {}", value.value))
                    .at(value.span, "must be > 0")
                    .with_help("dividing by zero or a negative std makes every input meaningless"),
            );
            ok = false;
        }
    }
    ok.then(|| values.iter().map(|value| value.value).collect())
}
