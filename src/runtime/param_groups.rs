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

/// The names of the recipe groups that select no parameter of `network`: a group that selects
/// nothing would be trained or frozen without effect, so a run refuses it.
pub fn groups_without_parameters<M: burn::module::Module>(network: &M, groups: &[Group]) -> Vec<String> {
    struct Paths {
        path: Vec<String>,
        found: Vec<String>,
    }
    impl burn::module::ModuleVisitor for Paths {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }
        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }
        fn visit_float<const D: usize>(&mut self, _param: &burn::module::Param<burn::prelude::Tensor<D>>) {
            self.found.push(self.path.join("."));
        }
    }
    let mut paths = Paths { path: Vec::new(), found: Vec::new() };
    network.visit(&mut paths);
    groups
        .iter()
        .filter(|group| {
            let selector = group_params(group);
            !paths.found.iter().any(|path| selector.matches(&burn::module::ParamId::new(), Some(path)))
        })
        .map(|group| group.name.clone())
        .collect()
}
