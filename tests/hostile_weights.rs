//! Weights files from strangers: every one is a clear TL4006 (or loads what is sound), memory stays
//! bounded, and nothing in a file is ever executed.

use std::path::{Path, PathBuf};

use burn::prelude::*;
use tlrun::check::{NoWorld, check_source};
use tlrun::runtime::model::Network;
use tlrun::runtime::weights::{self, LoadScope};

fn network() -> Network {
    let (recipe, _) = check_source(
        "recipe \"h\"\nbackbone resnet_small from none\ndata { train \"x\" }\nstage s { train head epochs 1 }\n",
        "h",
        &NoWorld,
    );
    Network::new(&recipe.unwrap(), 5, &Device::flex())
}

fn write(dir: &Path, name: &str, bytes: &[u8]) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

fn load_error(path: &Path) -> String {
    let error = weights::load(&mut network(), path, LoadScope::Backbone).expect_err("a hostile file must not load");
    assert_eq!(error.code.as_str(), "TL4006", "{}", error.message);
    assert!(error.message.contains(&path.display().to_string()), "the message names the file: {}", error.message);
    error.message
}

/// A valid safetensors file with the given header JSON and data bytes.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

#[test]
fn garbage_and_truncated_files_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    load_error(&write(dir.path(), "empty.safetensors", b""));
    load_error(&write(dir.path(), "garbage.safetensors", b"this is not a weights file at all, just text"));
    let good = safetensors(r#"{"conv1.weight":{"dtype":"F32","shape":[16,3,3,3],"data_offsets":[0,1728]}}"#, &[0u8; 1728]);
    load_error(&write(dir.path(), "truncated.safetensors", &good[..good.len() / 2]));
}

#[test]
fn a_header_length_of_terabytes_does_not_allocate_it() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = (4u64 << 40).to_le_bytes().to_vec(); // claims a 4 TiB header
    bytes.extend_from_slice(b"{}");
    let message = load_error(&write(dir.path(), "huge-header.safetensors", &bytes));
    assert!(!message.is_empty());
}

#[test]
fn offsets_past_the_end_of_the_file_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let lying = safetensors(r#"{"conv1.weight":{"dtype":"F32","shape":[16,3,3,3],"data_offsets":[0,1728]}}"#, &[0u8; 100]);
    load_error(&write(dir.path(), "lying.safetensors", &lying));
}

#[test]
fn a_wrong_dtype_is_refused_or_converted_never_misread() {
    use safetensors::tensor::TensorView;
    let dir = tempfile::tempdir().unwrap();
    // A complete, sound file, then conv1.weight replaced by int64 values.
    let sound = dir.path().join("sound.safetensors");
    weights::save(&network(), &sound).unwrap();
    let bytes = std::fs::read(&sound).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let values: Vec<u8> = (0..432i64).flat_map(|v| (v % 7 - 3).to_le_bytes()).collect();
    let mut tensors: Vec<(String, TensorView<'_>)> = file.tensors().into_iter().filter(|(name, _)| name != "conv1.weight").collect();
    tensors.push(("conv1.weight".into(), TensorView::new(safetensors::Dtype::I64, vec![16, 3, 3, 3], &values).unwrap()));
    let path = dir.path().join("int64.safetensors");
    std::fs::write(&path, safetensors::serialize(tensors, None).unwrap()).unwrap();

    let mut target = network();
    match weights::load(&mut target, &path, LoadScope::Backbone) {
        Err(error) => {
            assert_eq!(error.code.as_str(), "TL4006");
            assert!(error.message.contains("conv1.weight"), "{}", error.message);
        }
        Ok(_) => {
            // Converted: then every value must be the integer it was, not reinterpreted bytes.
            let loaded = tlrun::runtime::param_snapshot::snapshot(&target);
            let expected: Vec<f32> = (0..432i64).map(|v| (v % 7 - 3) as f32).collect();
            assert_eq!(loaded["backbone.conv1.weight"], expected);
        }
    }
}

#[test]
fn a_pickle_that_calls_os_system_runs_nothing() {
    let marker = Path::new("tlrun-pwned-marker");
    let _ = std::fs::remove_file(marker);
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/hostile/evil.pth");
    // The file holds one sound tensor and a payload object; loading may fail (most tensors are
    // missing) but must not execute the payload.
    let result = weights::load(&mut network(), &fixture, LoadScope::Backbone);
    assert!(!marker.exists(), "the pickle's os.system payload ran");
    let error = result.expect_err("the file lacks most tensors");
    assert_eq!(error.code.as_str(), "TL4006");
    assert!(error.message.contains("is missing from the file"), "{}", error.message);
}
