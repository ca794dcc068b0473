use super::recipe::Group;
use crate::arch::Architecture;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::Span;
use crate::syntax::ast::GroupDef;

/// The layer name that stands for the new head in groups.
pub const HEAD: &str = "head";

pub struct CheckedGroups {
    pub groups: Vec<Group>,
    /// Default groups that the cut removed entirely: naming one in a stage is TL1008, not TL1003.
    pub cut_away: Vec<String>,
}

impl CheckedGroups {
    pub fn index(&self, name: &str) -> Option<usize> {
        self.groups.iter().position(|group| group.name == name)
    }

    pub fn names(&self) -> impl Iterator<Item = &str> + Clone {
        self.groups.iter().map(|group| group.name.as_str())
    }

    /// How to write "train the new head alone" in this recipe: `train NAME` when a group holds
    /// only the head. Help text names only groups that exist.
    pub fn train_head_alone(&self) -> String {
        match self.groups.iter().find(|group| group.layers.iter().all(|layer| layer == HEAD) && group.is_head()) {
            Some(group) => format!("`train {}`", group.name),
            None => "a group that holds only `head` (the head shares a group with pretrained layers here), trained alone".to_string(),
        }
    }
}

pub fn check(
    definitions: Option<&[GroupDef]>,
    architecture: &Architecture,
    kept_layers: usize,
    diagnostics: &mut Vec<Diagnostic>,
) -> CheckedGroups {
    let kept: Vec<&str> = architecture.layers[..kept_layers].iter().map(|layer| layer.name).collect();
    let Some(definitions) = definitions else {
        let mut groups = Vec::new();
        let mut cut_away = Vec::new();
        for (name, members) in &architecture.default_groups {
            // Only layers with weights: a group of `avgpool` alone would take a place in the spread.
            let layers: Vec<String> = members
                .iter()
                .filter(|member| kept.contains(member))
                .filter(|member| architecture.layers.iter().any(|layer| layer.name == **member && layer.has_parameters()) || *name == "stem")
                .map(|member| member.to_string())
                .collect();
            if layers.is_empty() {
                cut_away.push(name.to_string());
            } else {
                groups.push(Group { name: name.to_string(), layers });
            }
        }
        groups.push(Group { name: HEAD.to_string(), layers: vec![HEAD.to_string()] });
        return CheckedGroups { groups, cut_away };
    };

    let mut groups: Vec<Group> = Vec::new();
    let mut group_spans: Vec<Span> = Vec::new();
    let mut owner: Vec<(String, Span)> = Vec::new();
    for definition in definitions {
        if let Some(first) = groups.iter().position(|group| group.name == definition.name.value) {
            diagnostics.push(
                Diagnostic::new(Code::DuplicateName, format!("group `{}` is defined twice", definition.name.value))
                    .at(definition.name.span, "defined again here")
                    .with_related(group_spans[first], "first defined here")
                    .with_help("give each group its own name, or merge the two lists"),
            );
            continue;
        }
        let mut layers = Vec::new();
        for member in &definition.members {
            let name = member.value.as_str();
            if let Some((_, first)) = owner.iter().find(|(layer, _)| layer == name) {
                diagnostics.push(
                    Diagnostic::new(Code::OverlappingGroups, format!("layer `{name}` is in two groups"))
                        .at(member.span, "listed again here")
                        .with_related(*first, "first listed here")
                        .with_help("a layer freezes and takes a learning rate with exactly one group"),
                );
                continue;
            }
            if name != HEAD && !kept.contains(&name) {
                let diagnostic = if architecture.layer_index(name).is_some() {
                    Diagnostic::new(Code::GroupRemovedByCut, format!("layer `{name}` is removed by the cut"))
                        .at(member.span, "not in the cut backbone")
                        .with_help("remove it from the group, or cut later")
                } else {
                    Diagnostic::new(Code::UnknownLayer, format!("`{}` has no layer `{name}`", architecture.name))
                        .at(member.span, "unknown layer")
                        .with_suggestion(name, kept.iter().copied().chain([HEAD]), "layers")
                };
                diagnostics.push(diagnostic);
                continue;
            }
            owner.push((name.to_string(), member.span));
            layers.push(name.to_string());
        }
        let weighted = layers.iter().any(|layer| {
            layer == HEAD || architecture.layers.iter().any(|spec| spec.name == layer.as_str() && spec.has_parameters())
        });
        if !layers.is_empty() && !weighted {
            diagnostics.push(
                Diagnostic::new(Code::GroupWithoutWeights, format!("group `{}` holds no weights", definition.name.value))
                    .at(definition.name.span, format!("{} ha{} no parameters", layers.join(", "), if layers.len() == 1 { "s" } else { "ve" }))
                    .with_help("freezing or training it would change nothing: put these layers in a group with a layer that has weights"),
            );
        }
        groups.push(Group { name: definition.name.value.clone(), layers });
        group_spans.push(definition.name.span);
    }

    let block_span = definitions.first().map(|definition| definition.name.span).unwrap_or_default();
    let ungrouped: Vec<&str> = architecture.layers[..kept_layers]
        .iter()
        .filter(|layer| layer.has_parameters() && !owner.iter().any(|(name, _)| name == layer.name))
        .map(|layer| layer.name)
        .chain((!owner.iter().any(|(name, _)| name == HEAD)).then_some(HEAD))
        .collect();
    if !ungrouped.is_empty() {
        let listed: Vec<String> = ungrouped.iter().map(|name| format!("`{name}`")).collect();
        diagnostics.push(
            Diagnostic::new(Code::UngroupedLayer, format!("no group holds {}", listed.join(", ")))
                .at(block_span, "groups start here")
                .with_help("every layer with weights must be in a group, so that every stage says whether it trains"),
        );
    }
    groups.retain(|group| !group.layers.is_empty());
    CheckedGroups { groups, cut_away: Vec::new() }
}

#[cfg(test)]
mod tests {
    use crate::check::{NoWorld, check_source};

    /// docs/language.md: commas between group members and between `train` names are optional.
    #[test]
    fn commas_between_names_are_optional() {
        let recipe = |separator: &str| {
            let source = format!(
                "backbone resnet_small from none\ndata {{ train \"d\" }}\n\
                 groups {{\n  early: conv1{separator} bn1{separator} relu{separator} layer1\n  late: layer2{separator} layer3\n  top: head\n}}\n\
                 stage a {{ train late{separator} top  epochs 1 }}\n"
            );
            let (recipe, diagnostics) = check_source(&source, "commas", &NoWorld);
            assert!(diagnostics.iter().all(|diagnostic| !diagnostic.is_error()), "{separator:?}: {diagnostics:#?}");
            recipe.expect("checks")
        };
        let spaced = recipe("");
        assert_eq!(spaced.groups.len(), 3);
        assert_eq!(recipe(","), spaced);
    }
}
