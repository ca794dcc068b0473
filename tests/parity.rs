//! PyTorch parity, with no Python at test time: tests/fixtures/parity holds a torch state_dict of
//! `resnet_small`, an input batch and the logits PyTorch computed (make_fixture.py made them).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::prelude::*;
use safetensors::SafeTensors;
use tlrun::check::{NoWorld, check_source};
use tlrun::runtime::model::Network;
use tlrun::runtime::weights::{self, LoadScope};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/parity").join(name)
}

fn tensors(path: &Path) -> BTreeMap<String, (Vec<usize>, Vec<f32>)> {
    let bytes = std::fs::read(path).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    file.tensors()
        .into_iter()
        .filter(|(_, view)| view.dtype() == safetensors::Dtype::F32)
        .map(|(name, view)| {
            let values = view.data().chunks_exact(4).map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]])).collect();
            (name, (view.shape().to_vec(), values))
        })
        .collect()
}

/// torchvision's own layout: the backbone up to layer3, then pool + fc.
const RECIPE: &str = r#"recipe "parity"
backbone resnet_small from none
data { train "unused" }
cut after layer3
head { pool avg  linear 10 }
stage s { train head epochs 1 }
"#;

fn loaded_network() -> Network {
    let (recipe, diagnostics) = check_source(RECIPE, "parity", &NoWorld);
    assert!(diagnostics.is_empty(), "{diagnostics:?}");
    let mut network = Network::new(&recipe.unwrap(), 10, &Device::flex());
    let report = weights::load(&mut network, &fixture("resnet_small.safetensors"), LoadScope::Network).unwrap();
    assert_eq!(report.unused, Vec::<String>::new(), "every tensor of the torch file is used");
    network
}

#[test]
fn logits_match_pytorch() {
    let network = loaded_network();
    let batch = tensors(&fixture("batch.safetensors"));
    let (input_shape, input) = &batch["input"];
    let (_, expected) = &batch["logits"];
    let device = Device::flex();
    let images = Tensor::<4>::from_data(TensorData::new(input.clone(), [input_shape[0], input_shape[1], input_shape[2], input_shape[3]]), &device);
    let logits: Vec<f32> = network.valid().forward(images).into_data().convert::<f32>().try_into_vec::<f32>().unwrap();
    assert_eq!(logits.len(), expected.len());
    let worst = logits.iter().zip(expected).map(|(a, b)| (a - b).abs()).fold(0.0f32, f32::max);
    assert!(worst < 1e-4, "largest difference from PyTorch's logits: {worst}\nours {logits:?}\ntorch {expected:?}");
}

#[test]
fn export_writes_the_same_names_and_values_pytorch_saved() {
    let network = loaded_network();
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("roundtrip.safetensors");
    weights::save(&network, &exported).unwrap();
    let original = tensors(&fixture("resnet_small.safetensors"));
    let ours = tensors(&exported);
    let expected_names: Vec<&String> = original.keys().collect();
    let our_names: Vec<&String> = ours.keys().collect();
    assert_eq!(our_names, expected_names, "same tensor names as torch's state_dict");
    for (name, (shape, values)) in &original {
        let (our_shape, our_values) = &ours[name];
        assert_eq!(our_shape, shape, "{name}");
        assert_eq!(our_values, values, "{name} round-trips bit for bit");
    }
    // torch's strict load_state_dict also wants every num_batches_tracked (int64).
    let all_names = |path: &Path| -> Vec<String> {
        let bytes = std::fs::read(path).unwrap();
        let mut names: Vec<String> = SafeTensors::deserialize(&bytes).unwrap().names().into_iter().map(str::to_string).collect();
        names.sort();
        names
    };
    assert_eq!(all_names(&exported), all_names(&fixture("resnet_small.safetensors")), "exactly torch's keys, nothing more or less");
}
