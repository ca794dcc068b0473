//! L2-SP (Li et al. 2018): the loss term `α/2 · ‖w − w₀‖²` over the backbone's parameters and
//! `β/2 · ‖w‖²` over the head's. `w₀` is the backbone as the run starts training it (the pretrained
//! weights, after the cut), kept detached in the backbone's parameter order; a resumed run takes
//! it from its own initial weights, so a resume pulls toward the same point.

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;

use super::model::Network;
use crate::check::recipe::L2Sp;

/// The backbone's starting values, flattened, in visiting order. Kept as plain data, made into a
/// fresh tensor at every step: a tensor kept from the autodiff graph (even detached) broke the
/// second step's backward ("graph tape has already been consumed").
pub struct Anchor {
    values: Vec<TensorData>,
}

impl Anchor {
    /// The backbone of `network` as it is now: the point its parameters are pulled toward.
    pub fn of(network: &Network) -> Anchor {
        struct Collect(Vec<TensorData>);
        impl ModuleVisitor for Collect {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                let count = value.shape().num_elements();
                self.0.push(value.reshape([count]).into_data());
            }
        }
        let mut collect = Collect(Vec::new());
        network.backbone.visit(&mut collect);
        Anchor { values: collect.0 }
    }

    /// `α/2 · Σ (w − w₀)²` over the backbone plus `β/2 · Σ w²` over the head, in the autodiff
    /// graph of `network`'s parameters; `None` when both strengths are 0.
    pub fn penalty(&self, network: &Network, strengths: &L2Sp) -> Option<Tensor<1>> {
        struct Sum<'a> {
            anchor: Option<&'a [TensorData]>,
            next: usize,
            strength: f64,
            total: Option<Tensor<1>>,
        }
        impl ModuleVisitor for Sum<'_> {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                let value = param.val();
                let count = value.shape().num_elements();
                let mut flat = value.reshape([count]);
                if let Some(anchor) = self.anchor {
                    let Some(start) = anchor.get(self.next) else { return };
                    self.next += 1;
                    flat = flat.clone().sub(Tensor::<1>::from_data(start.clone(), &flat.device()));
                }
                let term = flat.powi_scalar(2).sum().mul_scalar(self.strength / 2.0);
                self.total = Some(match self.total.take() {
                    Some(total) => total.add(term),
                    None => term,
                });
            }
        }
        let mut total = None;
        if strengths.alpha > 0.0 {
            let mut backbone = Sum { anchor: Some(&self.values), next: 0, strength: strengths.alpha, total: None };
            network.backbone.visit(&mut backbone);
            total = backbone.total;
        }
        if strengths.beta > 0.0 {
            let mut head = Sum { anchor: None, next: 0, strength: strengths.beta, total: None };
            network.head.visit(&mut head);
            total = match (total, head.total) {
                (Some(a), Some(b)) => Some(a.add(b)),
                (a, b) => a.or(b),
            };
        }
        total
    }
}
