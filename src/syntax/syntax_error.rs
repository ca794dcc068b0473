//! pest errors in words a user knows: "expected `epochs` or `lr`, found `epoch`", never rule names.

use pest::error::{Error, ErrorVariant, InputLocation};

use super::grammar::Rule;
use crate::diagnostics::{Code, Diagnostic, did_you_mean};
use crate::span::Span;

/// How a grammar rule reads in an "expected …" list; `None` hides helper rules.
fn describe(rule: Rule) -> Option<&'static str> {
    Some(match rule {
        Rule::recipe_decl => "`recipe`",
        Rule::seed_decl => "`seed`",
        Rule::export_decl => "`export`",
        Rule::publish_decl => "`publish`",
        Rule::predict_decl => "`predict`",
        Rule::sweep_block => "`sweep`",
        Rule::sweep_seed => "`seed`",
        Rule::sweep_lr => "`lr`",
        Rule::sweep_epochs => "`epochs`",
        Rule::sweep_batch => "`batch`",
        Rule::sweep_cut => "`cut`",
        Rule::sweep_spread => "`spread`",
        Rule::sweep_zoo => "`zoo`",
        Rule::checkpoint_decl => "`checkpoint`",
        Rule::backbone_decl => "`backbone`",
        Rule::data_block => "`data`",
        Rule::cut_decl => "`cut`",
        Rule::head_block => "`head`",
        Rule::groups_block => "`groups`",
        Rule::stage_block => "`stage`",
        Rule::string | Rule::string_text => "a quoted string",
        Rule::integer => "a whole number",
        Rule::number => "a number",
        Rule::name | Rule::raw_ident | Rule::group_member | Rule::group_list | Rule::multiplier => "a name",
        Rule::arch_name => "an architecture name",
        Rule::group_def => "a group (`name: layer layer …`)",
        Rule::weights_source => "`from`",
        Rule::zoo_source => "`zoo`",
        Rule::file_source => "`file`",
        Rule::recipe_source => "`recipe`",
        Rule::no_weights => "`none`",
        Rule::stats_block | Rule::multiplier_map => "`{`",
        Rule::mean_stat => "`mean`",
        Rule::std_stat => "`std`",
        Rule::size_stat => "`size`",
        Rule::channels_stat => "`channels`",
        Rule::train_folder | Rule::train_stmt | Rule::bn_train => "`train`",
        Rule::valid_folder | Rule::valid_split => "`valid`",
        Rule::batch_stmt => "`batch`",
        Rule::normalize_stmt => "`normalize`",
        Rule::normalize_backbone => "`backbone`",
        Rule::normalize_imagenet => "`imagenet`",
        Rule::normalize_explicit => "`mean`",
        Rule::augment_stmt => "`augment`",
        Rule::flip_aug => "`flip`",
        Rule::crop_aug => "`crop`",
        Rule::no_aug => "`none`",
        Rule::rotate_aug => "`rotate`",
        Rule::zoom_aug => "`zoom`",
        Rule::lighting_aug => "`lighting`",
        Rule::warp_aug => "`warp`",
        Rule::mixup_aug => "`mixup`",
        Rule::cutmix_aug => "`cutmix`",
        Rule::corrupt_stmt => "`corrupt`",
        Rule::corrupt_skip => "`skip`",
        Rule::corrupt_fail => "`fail`",
        Rule::cut_after => "`after`",
        Rule::cut_before => "`before`",
        Rule::pool_layer => "`pool`",
        Rule::pool_avg => "`avg`",
        Rule::pool_max => "`max`",
        Rule::pool_concat => "`concat`",
        Rule::dropout_layer => "`dropout`",
        Rule::batchnorm_layer | Rule::bn_stmt => "`batchnorm`",
        Rule::relu_layer => "`relu`",
        Rule::linear_layer => "`linear`",
        Rule::linear_classes => "`classes`",
        Rule::freeze_stmt => "`freeze`",
        Rule::train_all => "`all`",
        Rule::train_from => "`from`",
        Rule::epochs_stmt => "`epochs`",
        Rule::lr_stmt => "`lr`",
        Rule::spread_stmt | Rule::spread_clause => "`spread`",
        Rule::multipliers_stmt => "`multipliers`",
        Rule::optimizer_stmt => "`optimizer`",
        Rule::opt_adamw => "`adamw`",
        Rule::opt_sgd => "`sgd`",
        Rule::opt_wd => "`wd`",
        Rule::opt_momentum => "`momentum`",
        Rule::opt_betas => "`betas`",
        Rule::opt_eps => "`eps`",
        Rule::schedule_stmt => "`schedule`",
        Rule::sched_onecycle => "`onecycle`",
        Rule::sched_cosine => "`cosine`",
        Rule::sched_constant => "`constant`",
        Rule::resize_stmt => "`resize`",
        Rule::resize_starts => "`at epochs`",
        Rule::bn_frozen => "`frozen`",
        Rule::synthetic_source => "`synthetic`",
        Rule::loss_decl => "`loss`",
        Rule::loss_smoothing => "`smoothing`",
        Rule::loss_weights => "`weights`",
        Rule::ema_decl => "`ema`",
        Rule::regularise_decl => "`regularise`",
        Rule::l2sp_term => "`l2sp α β`",
        Rule::bss_term => "`bss η k`",
        Rule::lwf_term => "`lwf λ T`",
        Rule::tta_decl => "`tta`",
        Rule::opt_wd_bn_bias => "`wd_bn_bias`",
        Rule::oc_pct => "`pct`",
        Rule::oc_div => "`div`",
        Rule::oc_div_final => "`final_div`",
        Rule::oc_moms => "`moms`",
        Rule::accumulate_stmt => "`accumulate`",
        Rule::keep_stmt => "`keep best`",
        Rule::metric_accuracy => "`valid_accuracy`",
        Rule::metric_loss => "`valid_loss`",
        Rule::stop_stmt => "`stop after`",
        Rule::resize_method_stmt => "`resize_method`",
        Rule::data_channels => "`channels`",
        Rule::channels_adapt => "`adapt`",
        Rule::method_crop => "`crop`",
        Rule::method_squash => "`squash`",
        Rule::method_pad => "`pad`",
        _ => return None,
    })
}

/// Convert a pest error found in `source[offset..]` into a TL0001 diagnostic over the whole file.
/// Also returns the byte position of the error in the whole file.
pub fn syntax_error(error: &Error<Rule>, source: &str, offset: usize) -> (Diagnostic, usize) {
    let reported = offset
        + match error.location {
            InputLocation::Pos(position) => position,
            InputLocation::Span((start, _)) => start,
        };
    // Point at the offending word, not at the whitespace before it.
    let position = reported + source[reported..].len() - source[reported..].trim_start().len();
    let found = token_at(source, position);
    let span = Span::new(position, position + found.len().max(usize::from(position < source.len())));
    let found_text = if found.is_empty() {
        if position >= source.len() { "end of file".to_string() } else { "this".to_string() }
    } else {
        super::lookalike::shown(found)
    };

    let mut expected: Vec<&'static str> = match &error.variant {
        ErrorVariant::ParsingError { positives, .. } => positives.iter().filter_map(|rule| describe(*rule)).collect(),
        ErrorVariant::CustomError { .. } => Vec::new(),
    };
    expected.sort_unstable();
    expected.dedup();
    // Keep the words people type first; "a name" etc. go last.
    expected.sort_by_key(|word| !word.starts_with('`'));

    let message = if expected.is_empty() {
        format!("unexpected {found_text}")
    } else {
        format!("expected {}, found {found_text}", join_alternatives(&expected))
    };
    let keywords = expected.iter().filter(|word| word.starts_with('`')).map(|word| word.trim_matches('`'));
    let mut diagnostic = Diagnostic::new(Code::SyntaxError, message).at(span, "not expected here");
    // A character that looks like the ASCII meant, or cannot be seen: say which, by code point.
    let character_end = source[position..].chars().next().map_or(position, |c| position + c.len_utf8());
    if let Some(named) = super::lookalike::describe_first(&source[position..character_end.max(position)]) {
        return (diagnostic.with_help(named), position);
    }
    // `train head epoch 1`: the typo `epoch` was read as a group name, so the error lands on `1`.
    let previous = previous_word(source, position);
    if let Some(hint) = super::familiar_mistakes::hint(source, position, found, previous.map(|(word, _)| word)) {
        if let (true, Some((word, word_span))) = (hint.on_previous, previous) {
            diagnostic = diagnostic.with_related(word_span, format!("`{word}` was read as a group name"));
        }
        return (diagnostic.with_help(hint.help), position);
    }
    if let Some(best) = did_you_mean(found, keywords.clone()) {
        diagnostic = diagnostic.with_help(format!("did you mean `{best}`?"));
    } else if let Some((word, word_span)) = previous {
        if let Some(best) = did_you_mean(word, keywords) {
            diagnostic = diagnostic
                .with_related(word_span, format!("read as a name; did you mean `{best}`?"))
                .with_help(format!("did you mean `{best}` instead of `{word}`?"));
        } else {
            diagnostic = diagnostic.with_help("see docs/language.md for what each statement takes");
        }
    } else if found.is_empty() && position >= source.len() {
        diagnostic = diagnostic.with_help("the recipe ends too early: is a `}` or a value missing?");
    } else {
        diagnostic = diagnostic.with_help("see docs/language.md for what each statement takes");
    }
    (diagnostic, position)
}

/// The word just before `position` and its span, skipping spaces.
fn previous_word(source: &str, position: usize) -> Option<(&str, Span)> {
    let before = source.get(..position)?.trim_end();
    let start = before
        .char_indices()
        .rev()
        .find(|(_, c)| !(c.is_ascii_alphanumeric() || *c == '_'))
        .map_or(0, |(index, c)| index + c.len_utf8());
    let word = &before[start..];
    (!word.is_empty() && word.chars().next().is_some_and(|c| c.is_ascii_alphabetic()))
        .then(|| (word, Span::new(start, before.len())))
}

/// The word (or single character) at `position`, for "found …".
fn token_at(source: &str, position: usize) -> &str {
    let Some(rest) = source.get(position..) else { return "" };
    let word_length = rest
        .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '.'))
        .unwrap_or(rest.len());
    if word_length > 0 {
        &rest[..word_length]
    } else {
        rest.chars().next().map_or("", |c| &rest[..c.len_utf8()])
    }
}

fn join_alternatives(words: &[&str]) -> String {
    match words {
        [] => String::new(),
        [only] => only.to_string(),
        [init @ .., last] => {
            let shown: Vec<&str> = init.iter().take(15).copied().collect();
            let more = if init.len() > 15 { ", …" } else { "" };
            format!("{}{more} or {last}", shown.join(", "))
        }
    }
}
