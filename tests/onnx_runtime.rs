//! The ONNX export checked by its real consumer: ONNX Runtime runs each exported model on 32 real
//! images (scikit-learn's digit scans and photographs) and its logits must equal tlrun's to 1e-4,
//! for resnet_small, resnet18, resnet34 and resnet50, every head construct, a `channels 1 adapt`
//! model, and a graph with the normalisation baked in. Needs a Python with onnxruntime,
//! scikit-learn and Pillow (`TLRUN_PYTHON`, default `python3`); .ci/run makes that venv and
//! runs this with `--ignored`. Without it the test fails: it never skips.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use tlrun::model_card::ModelCard;
use tlrun::data::{DecodedImage, Fit, SizedSet};
use tlrun::runtime::predictor::Predictor;

fn python() -> String {
    std::env::var("TLRUN_PYTHON").unwrap_or_else(|_| "python3".to_string())
}

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx").join(name)
}

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).env("TLRUN_ZOO", dir.join("zoo")).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

/// A recipe trained for one epoch on a few synthetic images (so BatchNorm's running statistics
/// move away from 0 and 1), exporting ONNX.
fn recipe(name: &str, backbone: &str, data: &str, cut: &str, head: &str) -> String {
    format!(
        "recipe \"{name}\"\nseed 7\nbackbone {backbone}\n\
         data {{ train synthetic \"shapes-target\" 3 per class valid synthetic \"shapes-target\" 1 per class batch 5 size 32 {data} }}\n\
         {cut}\nhead {{ {head} }}\nstage s {{ train all epochs 1 lr 1e-3 }}\nexport \"{name}.onnx\"\nexport \"{name}.safetensors\"\n"
    )
}

fn write_f32(path: &Path, values: &[f32]) {
    std::fs::write(path, values.iter().flat_map(|value| value.to_le_bytes()).collect::<Vec<u8>>()).unwrap();
}

struct Case {
    name: String,
    model: PathBuf,
    /// The run folder whose card and weights tlrun's logits come from.
    run: PathBuf,
    baked: bool,
}

#[test]
#[ignore = "needs Python with onnxruntime, scikit-learn and Pillow; .ci/run installs them and runs this test"]
fn onnx_runtime_gives_tlruns_logits_on_real_images() {
    let dir = tempfile::tempdir().unwrap();
    let images_dir = dir.path().join("images");
    let made = Command::new(python()).arg(fixture("real_images.py")).arg(&images_dir).output().expect("python runs");
    assert!(made.status.success(), "{} could not write the real images (is scikit-learn installed?): {}", python(), text(&made));

    let configs = [
        ("small_avg", "resnet_small from none", "", "", "pool avg linear classes"),
        ("small_cut", "resnet_small from none", "resize_method pad", "cut after layer2", "pool max dropout 0.5 linear classes"),
        ("r18_concat", "resnet18 from none", "resize_method crop", "", "pool concat batchnorm dropout 0.25 linear 32 relu linear classes"),
        ("r34_max", "resnet34 from none", "", "", "pool max batchnorm linear classes"),
        ("r50_avg", "resnet50 from none", "resize_method crop", "", "pool avg dropout 0.2 linear classes"),
    ];
    let mut cases = Vec::new();
    for (name, backbone, data, cut, head) in configs {
        std::fs::write(dir.path().join(format!("{name}.tl")), recipe(name, backbone, data, cut, head)).unwrap();
        let output = tlrun(dir.path(), &[&format!("{name}.tl"), "--out", &format!("runs/{name}")]);
        assert!(output.status.success(), "{}", text(&output));
        cases.push(Case { name: name.to_string(), model: dir.path().join(format!("{name}.onnx")), run: dir.path().join(format!("runs/{name}")), baked: false });
    }
    // Grey images on colour weights: `channels 1 adapt` sums resnet18's first filters.
    let adapt = recipe("r18_grey", "resnet18 from file \"r18_concat.safetensors\"", "channels 1 adapt", "", "pool avg linear classes");
    std::fs::write(dir.path().join("r18_grey.tl"), adapt).unwrap();
    let output = tlrun(dir.path(), &["r18_grey.tl", "--out", "runs/r18_grey"]);
    assert!(output.status.success(), "{}", text(&output));
    cases.push(Case { name: "r18_grey".into(), model: dir.path().join("r18_grey.onnx"), run: dir.path().join("runs/r18_grey"), baked: false });
    // The normalisation in the graph, from `tlrun export`, for a colour and a grey model.
    for name in ["r18_concat", "r18_grey"] {
        let out = format!("{name}_baked.onnx");
        let output = tlrun(dir.path(), &["export", &format!("runs/{name}"), "--format", "onnx", "--with-preprocessing", "--out", &out]);
        assert!(output.status.success(), "{}", text(&output));
        cases.push(Case { name: format!("{name}_baked"), model: dir.path().join(out), run: dir.path().join(format!("runs/{name}")), baked: true });
    }

    let mut files: Vec<PathBuf> = std::fs::read_dir(&images_dir).unwrap().map(|entry| entry.unwrap().path()).collect();
    files.sort();
    assert_eq!(files.len(), 32);
    let mut manifest = Vec::new();
    for case in &cases {
        let card = ModelCard::read(&case.run.join("model.json")).unwrap();
        let predictor = Predictor::load(card.clone(), &case.run.join("weights.safetensors"), "cpu").unwrap_or_else(|error| panic!("{}", error.message));
        let mut images: Vec<DecodedImage> = files.iter().map(|path| DecodedImage::from_file(path).unwrap()).collect();
        let inputs = predictor.inputs(&mut images.clone()).unwrap();
        let logits = predictor.logits(inputs.clone(), files.len());
        // What the baked graph takes: the same images, grey when the card says so, fitted to
        // the square, as pixel values 0–255.
        let fed = if case.baked {
            if card.preprocessing.grey {
                images.iter_mut().for_each(DecodedImage::make_grey);
            }
            let labels = vec![0; images.len()];
            let fit = Fit::of(card.preprocessing.resize_method, false);
            SizedSet::try_build(&images, &labels, card.preprocessing.size, &[0.0], &[1.0 / 255.0], fit, card.input_channels).unwrap().images
        } else {
            inputs
        };
        let size = card.preprocessing.size as usize;
        let (inputs_path, logits_path) = (dir.path().join(format!("{}.inputs", case.name)), dir.path().join(format!("{}.logits", case.name)));
        write_f32(&inputs_path, &fed);
        write_f32(&logits_path, &logits);
        manifest.push(serde_json::json!({
            "name": case.name,
            "model": case.model,
            "inputs": inputs_path,
            "logits": logits_path,
            "input_shape": [files.len(), card.input_channels as usize, size, size],
            "logits_shape": [files.len(), card.classes.len()],
        }));
    }
    let manifest_path = dir.path().join("manifest.json");
    std::fs::write(&manifest_path, serde_json::to_string_pretty(&manifest).unwrap()).unwrap();
    let checked = Command::new(python()).arg(fixture("check_onnx.py")).arg(&manifest_path).output().expect("python runs");
    println!("{}", text(&checked));
    assert!(checked.status.success(), "ONNX Runtime disagrees with tlrun:\n{}", text(&checked));
    assert_eq!(String::from_utf8_lossy(&checked.stdout).lines().filter(|line| line.starts_with("ok ")).count(), cases.len());
}
