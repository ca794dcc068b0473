use burn::prelude::*;

use crate::diagnostics::{Code, Diagnostic};

/// `cpu` (burn's flex backend) or `cuda[:N]` (needs the `cuda` feature and a GPU).
pub fn parse_device(spec: &str) -> Result<Device, Diagnostic> {
    let spec = spec.trim().to_ascii_lowercase();
    if spec == "cpu" {
        return Ok(Device::flex());
    }
    let Some(rest) = spec.strip_prefix("cuda") else {
        return Err(Diagnostic::new(Code::DeviceUnavailable, format!("unknown device `{spec}`"))
            .with_help("use `--device cpu` or `--device cuda`, `--device cuda:1`"));
    };
    let index: usize = match rest.strip_prefix(':') {
        None if rest.is_empty() => 0,
        Some(number) => number.parse().map_err(|_| {
            Diagnostic::new(Code::DeviceUnavailable, format!("`{spec}` is not a CUDA device"))
                .with_help("write `cuda:0`, `cuda:1`, …")
        })?,
        None => {
            return Err(Diagnostic::new(Code::DeviceUnavailable, format!("unknown device `{spec}`"))
                .with_help("use `--device cpu` or `--device cuda[:N]`"));
        }
    };
    cuda_device(index)
}

#[cfg(feature = "cuda")]
fn cuda_device(index: usize) -> Result<Device, Diagnostic> {
    let device = Device::cuda(index);
    // cudarc panics when no driver or GPU is there; turn that into a diagnostic.
    let probe = std::panic::catch_unwind(|| {
        let tensor = Tensor::<1>::from_floats([1.0, 2.0], &device);
        tensor.sum().into_scalar::<f32>()
    });
    match probe {
        Ok(value) if (value - 3.0).abs() < 1e-6 => Ok(Device::cuda(index)),
        _ => Err(Diagnostic::new(Code::DeviceUnavailable, format!("CUDA device {index} is not usable on this machine"))
            .with_help("check `nvidia-smi`; use `--device cpu` to train on the CPU")),
    }
}

#[cfg(not(feature = "cuda"))]
fn cuda_device(_index: usize) -> Result<Device, Diagnostic> {
    Err(Diagnostic::new(Code::DeviceUnavailable, "this tlrun was built without CUDA")
        .with_help("rebuild with `cargo build --release --features cuda` (see README), or use `--device cpu`"))
}
