//! Recipe groups as burn `ParamGroup`s: which parameter paths (and BatchNorm flags) each one owns.

use burn::module::ParamGroup;

use crate::check::recipe::Group;

/// Path prefixes of a recipe layer: `head` → the new head, any other name → that backbone layer.
fn layer_prefix(layer: &str) -> String {
    if layer == "head" { r"^head\.".to_string() } else { format!(r"^backbone\.{}\.", regex_escape(layer)) }
}

/// BatchNorm parameters, running statistics and train flags inside a recipe layer.
fn batchnorm_pattern(layer: &str) -> String {
    match layer {
        "head" => r"^head\.norms\.".to_string(),
        name if name.starts_with("bn") => format!(r"^backbone\.{}\.", regex_escape(name)),
        name => format!(r"^backbone\.{}\.\d+\.(bn\d|downsample\.bn)\.", regex_escape(name)),
    }
}

fn regex_escape(text: &str) -> String {
    text.chars().flat_map(|c| if c.is_ascii_alphanumeric() || c == '_' { vec![c] } else { vec!['\\', c] }).collect()
}

fn any_of(patterns: Vec<String>) -> ParamGroup {
    // The patterns are built from layer names checked against the architecture; they always compile.
    ParamGroup::from_any_regexes(patterns).unwrap_or_else(|_| ParamGroup::from_paths(Vec::<String>::new()))
}

/// Everything a group owns.
pub fn group_params(group: &Group) -> ParamGroup {
    any_of(group.layers.iter().map(|layer| layer_prefix(layer)).collect())
}

/// Only the BatchNorm layers a group owns.
pub fn group_batchnorms(group: &Group) -> ParamGroup {
    any_of(group.layers.iter().map(|layer| batchnorm_pattern(layer)).collect())
}
