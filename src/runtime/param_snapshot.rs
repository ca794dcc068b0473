use std::collections::BTreeMap;

use burn::module::{ModuleVisitor, Param};
use burn::prelude::*;

/// Every float tensor of a module (parameters and BatchNorm running statistics) by dotted path.
pub fn snapshot<M: Module>(module: &M) -> BTreeMap<String, Vec<f32>> {
    // valid() syncs running statistics, so the values read are current (see burn notes).
    let module = module.valid();
    let mut visitor = SnapshotVisitor::default();
    module.visit(&mut visitor);
    visitor.values
}

#[derive(Default)]
struct SnapshotVisitor {
    path: Vec<String>,
    values: BTreeMap<String, Vec<f32>>,
}

impl ModuleVisitor for SnapshotVisitor {
    fn enter_module(&mut self, name: &str, _container: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // A tensor that cannot be read as f32 is recorded as NaN, never as empty: two empty
        // snapshots would compare equal, and NaN compares equal to nothing.
        let tensor = param.val();
        let count = tensor.shape().num_elements();
        let values = tensor.into_data().convert::<f32>().try_into_vec::<f32>().unwrap_or_else(|_| vec![f32::NAN; count]);
        self.values.insert(self.path.join("."), values);
    }
}

/// Relative L2 change of each tensor: ‖after − before‖ / ‖before‖ (0 when unchanged).
pub fn relative_change(before: &BTreeMap<String, Vec<f32>>, after: &BTreeMap<String, Vec<f32>>) -> BTreeMap<String, f64> {
    before
        .iter()
        .filter_map(|(path, old)| {
            let new = after.get(path)?;
            let diff: f64 = old.iter().zip(new).map(|(a, b)| f64::from(a - b).powi(2)).sum::<f64>().sqrt();
            let norm: f64 = old.iter().map(|a| f64::from(*a).powi(2)).sum::<f64>().sqrt();
            Some((path.clone(), if norm > 0.0 { diff / norm } else { diff }))
        })
        .collect()
}
