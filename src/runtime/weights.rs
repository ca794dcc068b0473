//! Weights in and out as safetensors with torchvision's names (`layer1.0.downsample.0.weight`), so
//! PyTorch loads what tlrun exports and tlrun loads what torchvision and timm save.

use std::path::Path;

use burn::module::Module;
use burn::store::{ApplyError, BurnToPyTorchAdapter, ModuleSnapshot, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore};

use super::model::Network;
use super::model::head::HeadOp;
use crate::check::recipe::Pool;
use crate::diagnostics::{Code, Diagnostic};

/// What loading a weights file did besides applying tensors: the keys it did not use.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct LoadReport {
    pub applied: usize,
    /// Keys in the file that nothing in the network took (cut-away layers, an old head…).
    pub unused: Vec<String>,
}

/// (burn path prefix, torch key prefix) for the head's parameterised layers. A plain
/// `pool avg + linear` head on a full-depth cut is torchvision's own `fc`, so it exports as `fc.`.
fn head_prefixes(network: &Network) -> Vec<(String, String)> {
    let ops = &network.head.ops;
    let architecture = crate::arch::lookup(&network.backbone.architecture);
    let torchvision_fc = architecture.is_some_and(|architecture| {
        architecture.layer_index("avgpool") == Some(network.backbone.kept)
    }) && matches!(ops.as_slice(), [HeadOp::Pool(Pool::Avg), HeadOp::Flatten, HeadOp::Linear(0)]);
    if torchvision_fc {
        return vec![("head.linears.0.".to_string(), "fc.".to_string())];
    }
    ops.iter()
        .enumerate()
        .filter_map(|(position, op)| match op {
            HeadOp::Linear(index) => Some((format!("head.linears.{index}."), format!("head.{position}."))),
            HeadOp::BatchNorm(index) => Some((format!("head.norms.{index}."), format!("head.{position}."))),
            _ => None,
        })
        .collect()
}

fn escape(prefix: &str) -> String {
    format!("^{}", prefix.replace('.', r"\."))
}


/// Save the whole network (backbone and head) with torchvision names, atomically.
pub fn save(network: &Network, path: &Path) -> Result<(), Diagnostic> {
    let unwritable = |error: String| {
        Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write weights to {}: {error}", path.display()))
            .with_help("check that the folder exists and is writable, and that the disk has room")
    };
    if let Some(parent) = path.parent().filter(|parent| !parent.as_os_str().is_empty()) {
        std::fs::create_dir_all(parent).map_err(|error| unwritable(error.to_string()))?;
    }
    let temporary = path.with_extension("safetensors.partial");
    // One metadata key only: burn's default metadata is a HashMap, whose order would make the
    // bytes differ from run to run for the same weights.
    let mut store = SafetensorsStore::from_file(&temporary)
        .clear_metadata()
        .metadata("producer", "tlrun")
        .overwrite(true)
        .with_to_adapter(BurnToPyTorchAdapter)
        .with_key_remapping(r"^backbone\.", "")
        .with_key_remapping(r"\.downsample\.conv\.", ".downsample.0.")
        .with_key_remapping(r"\.downsample\.bn\.", ".downsample.1.");
    for (burn_prefix, torch_prefix) in head_prefixes(network) {
        store = store.with_key_remapping(escape(&burn_prefix), torch_prefix);
    }
    network.valid().save_into(&mut store).map_err(|error| unwritable(error.to_string()))?;
    add_num_batches_tracked(&temporary).map_err(unwritable)?;
    super::run_folder::sync_and_rename(&temporary, path).map_err(|error| unwritable(error.to_string()))
}

/// torch's BatchNorm state_dict also holds `num_batches_tracked` (an int64 scalar); without it
/// `load_state_dict(strict=True)` refuses the file. burn has no such tensor, so add a zero for
/// every BatchNorm (torch reads it only when momentum is None).
fn add_num_batches_tracked(path: &Path) -> Result<(), String> {
    use safetensors::tensor::TensorView;
    let bytes = std::fs::read(path).map_err(|error| error.to_string())?;
    let file = safetensors::SafeTensors::deserialize(&bytes).map_err(|error| error.to_string())?;
    let mut tensors: Vec<(String, TensorView<'_>)> = file.tensors();
    let zero = 0i64.to_le_bytes();
    let extra: Vec<String> = tensors
        .iter()
        .filter_map(|(name, _)| name.strip_suffix(".running_mean").map(|prefix| format!("{prefix}.num_batches_tracked")))
        .collect();
    for name in extra {
        let view = TensorView::new(safetensors::Dtype::I64, Vec::new(), &zero).map_err(|error| error.to_string())?;
        tensors.push((name, view));
    }
    tensors.sort_by(|a, b| a.0.cmp(&b.0));
    let metadata = std::collections::HashMap::from([("producer".to_string(), "tlrun".to_string())]);
    let out = safetensors::serialize(tensors, Some(metadata)).map_err(|error| error.to_string())?;
    std::fs::write(path, out).map_err(|error| error.to_string())
}

/// Which network parts a weights file must fill.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadScope {
    /// Pretrained backbone only: the head is new, so head keys in the file are ignored.
    Backbone,
    /// Everything, head included (a saved run).
    Network,
}

/// Whether a weights file fits `architecture` up to its default cut (what a zoo entry must
/// hold): the file is loaded into that backbone on the CPU and the report returned.
pub fn check_backbone_file(architecture: &'static crate::arch::Architecture, input_channels: u32, path: &Path) -> Result<LoadReport, Diagnostic> {
    let kept = architecture.layer_index(architecture.default_cut_after).map_or(architecture.layers.len(), |index| index + 1);
    let backbone = super::model::Backbone::new(architecture, kept, input_channels, &burn::prelude::Device::flex());
    load_backbone(backbone, path).map(|(_, report)| report)
}

/// `zoo import`: load `from` into `architecture`'s backbone up to its default cut, then save it
/// to `to` as canonical torchvision-named safetensors. Nothing is written when it does not fit.
pub fn import_backbone_file(architecture: &'static crate::arch::Architecture, input_channels: u32, from: &Path, to: &Path) -> Result<LoadReport, Diagnostic> {
    let kept = architecture.layer_index(architecture.default_cut_after).map_or(architecture.layers.len(), |index| index + 1);
    let device = burn::prelude::Device::flex();
    let backbone = super::model::Backbone::new(architecture, kept, input_channels, &device);
    let (backbone, report) = load_backbone(backbone, from)?;
    save(&Network { backbone, head: super::model::Head::new(&[], 0, &device) }, to)?;
    Ok(report)
}

/// Load torchvision-named weights into a backbone alone (before a head is attached); head keys
/// in the file are reported unused.
pub fn load_backbone(backbone: super::model::Backbone, path: &Path) -> Result<(super::model::Backbone, LoadReport), Diagnostic> {
    // An empty head owns no tensor: the device it is made on does not matter.
    let head = super::model::Head::new(&[], 0, &burn::prelude::Device::flex());
    let mut network = Network { backbone, head };
    let report = load(&mut network, path, LoadScope::Backbone)?;
    Ok((network.backbone, report))
}

/// Load torchvision-named weights into the network. Every shape mismatch is listed with both shapes;
/// missing keys are errors; unused keys are returned for the caller to report.
pub fn load(network: &mut Network, path: &Path, scope: LoadScope) -> Result<LoadReport, Diagnostic> {
    if !path.is_file() {
        return Err(Diagnostic::new(Code::WeightsMismatch, format!("weights file {} does not exist", path.display()))
            .with_help("check the path in the recipe (relative to the recipe file) or the zoo entry"));
    }
    // torchvision names → ours. Both stores take the same rules; `fc.` first moves under backbone.
    let mut rules: Vec<(String, String)> = vec![
        (r"^(conv1|bn1|layer[1-4]|fc)\.".into(), "backbone.$1.".into()),
        (r"\.downsample\.0\.".into(), ".downsample.conv.".into()),
        (r"\.downsample\.1\.".into(), ".downsample.bn.".into()),
    ];
    if scope == LoadScope::Network {
        for (burn_prefix, torch_prefix) in head_prefixes(network) {
            let pattern = if torch_prefix == "fc." { r"^backbone\.fc\.".to_string() } else { escape(&torch_prefix) };
            rules.push((pattern, burn_prefix));
        }
    }
    let unreadable = |error: String| {
        Diagnostic::new(Code::WeightsMismatch, format!("cannot read weights file {}: {error}", path.display()))
            .with_help("give safetensors (safetensors.torch.save_file(model.state_dict(), path)) or a torch.save state_dict (.pth/.pt)")
    };
    let is_pickle = path.extension().is_some_and(|extension| matches!(extension.to_str(), Some("pth" | "pt" | "bin")));
    let result = if is_pickle {
        // burn's PytorchStore reads the pickle without executing it (no arbitrary callables run).
        let mut store = PytorchStore::from_file(path).allow_partial(true).validate(false);
        for (pattern, replacement) in &rules {
            store = store.with_key_remapping(pattern, replacement.clone());
        }
        network.load_from(&mut store).map_err(|error| unreadable(error.to_string()))?
    } else {
        let mut store = SafetensorsStore::from_file(path).with_from_adapter(PyTorchToBurnAdapter).allow_partial(true).validate(false);
        for (pattern, replacement) in &rules {
            store = store.with_key_remapping(pattern, replacement.clone());
        }
        network.load_from(&mut store).map_err(|error| unreadable(error.to_string()))?
    };

    // Missing tensors first: they are few and say most about a wrong file.
    let mut problems: Vec<String> = Vec::new();
    let shape_problems: Vec<String> = result
        .errors
        .iter()
        .map(|error| match error {
            ApplyError::ShapeMismatch { path, expected, found } => {
                format!("tensor `{path}`: the network has shape {:?}, the file {:?}", expected.as_ref() as &[usize], found.as_ref() as &[usize])
            }
            ApplyError::DTypeMismatch { path, expected, found } => {
                format!("tensor `{path}`: the network wants {expected:?}, the file has {found:?}")
            }
            ApplyError::AdapterError { path, message } | ApplyError::LoadError { path, message } => {
                format!("tensor `{path}`: {message}")
            }
        })
        .collect();
    let missing: Vec<&str> = result
        .missing
        .iter()
        .map(|(path, _)| path.as_str())
        .filter(|path| scope == LoadScope::Network || !path.starts_with("head."))
        .collect();
    problems.extend(missing.iter().map(|path| format!("tensor `{path}` is missing from the file")));
    problems.extend(shape_problems);
    if !problems.is_empty() {
        let count = problems.len();
        let shown: Vec<String> = problems.iter().take(40).map(|problem| format!("  - {problem}")).collect();
        let more = if count > 40 { format!("\n  … and {} more", count - 40) } else { String::new() };
        return Err(Diagnostic::new(
            Code::WeightsMismatch,
            format!("weights file {} does not fit the network ({count} problem(s)):\n{}{more}", path.display(), shown.join("\n")),
        )
        .with_help("check that the file was saved from the same architecture (names like `layer1.0.conv1.weight`)"));
    }
    let unused = result
        .unused
        .into_iter()
        .filter(|key| !key.ends_with("num_batches_tracked"))
        .filter(|key| !(scope == LoadScope::Backbone && key.starts_with("head.")))
        .collect();
    Ok(LoadReport { applied: result.applied.len(), unused })
}
