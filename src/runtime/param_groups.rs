//! Recipe groups as burn `ParamGroup`s, selected by the network's structure: every recipe layer
//! is a typed part of the network (a `BackboneOp` field of the backbone, or the head), and a group
//! owns the parameter ids found under its parts. No parameter path is matched as text.

use burn::module::{Module, ModuleVisitor, Param, ParamGroup, ParamId};
use burn::prelude::*;

use super::model::Network;
use crate::check::HEAD;
use crate::check::recipe::Recipe;

/// The ids of everything a module holds: tensors and control flags (BatchNorm's train flag).
pub fn parameter_ids<M: Module>(module: &M) -> Vec<ParamId> {
    struct Ids(Vec<ParamId>);
    impl ModuleVisitor for Ids {
        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            self.0.push(param.id);
        }
        fn visit_int<const D: usize>(&mut self, param: &Param<Tensor<D, Int>>) {
            self.0.push(param.id);
        }
        fn visit_bool<const D: usize>(&mut self, param: &Param<Tensor<D, Bool>>) {
            self.0.push(param.id);
        }
        fn visit_flag(&mut self, flag: &Param<burn::module::Flag>) {
            self.0.push(flag.id);
        }
    }
    let mut ids = Ids(Vec::new());
    module.visit(&mut ids);
    ids.0
}

/// What one recipe layer holds: all its parameters, and those of its BatchNorm layers.
#[derive(Default)]
pub struct LayerParameters {
    pub all: Vec<ParamId>,
    pub batchnorms: Vec<ParamId>,
}

impl LayerParameters {
    fn extend(&mut self, other: LayerParameters) {
        self.all.extend(other.all);
        self.batchnorms.extend(other.batchnorms);
    }
}

/// The recipe's groups, in recipe order, as selections of one network's parameters. A network
/// loaded from a record takes the record's ids, so groups are selected again for each stage.
pub struct ParameterGroups {
    pub all: Vec<ParamGroup>,
    pub batchnorms: Vec<ParamGroup>,
}

impl ParameterGroups {
    /// Every group of `recipe` over `network`; `Err` names the groups that select no parameter
    /// (trained or frozen without effect, so a run refuses them).
    pub fn select(network: &Network, recipe: &Recipe) -> Result<ParameterGroups, Vec<String>> {
        let mut groups = ParameterGroups { all: Vec::new(), batchnorms: Vec::new() };
        let mut empty = Vec::new();
        for group in &recipe.groups {
            let mut owned = LayerParameters::default();
            for layer in &group.layers {
                owned.extend(layer_parameters(network, recipe, layer));
            }
            if owned.all.is_empty() {
                empty.push(group.name.clone());
            }
            groups.all.push(ParamGroup::from_ids(owned.all));
            groups.batchnorms.push(ParamGroup::from_ids(owned.batchnorms));
        }
        if empty.is_empty() { Ok(groups) } else { Err(empty) }
    }
}

/// The parameters of one recipe layer: the head, or the backbone layer at that place of the
/// architecture (the checker accepted only these names).
fn layer_parameters(network: &Network, recipe: &Recipe, layer: &str) -> LayerParameters {
    if layer == HEAD {
        return LayerParameters { all: parameter_ids(&network.head), batchnorms: parameter_ids(&network.head.norms) };
    }
    let op = recipe.backbone.architecture.layer_index(layer).and_then(|index| network.backbone.ops.get(index));
    match op {
        Some(op) => network.backbone.layer_parameters(*op),
        None => LayerParameters::default(),
    }
}
