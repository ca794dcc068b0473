use std::sync::{Mutex, MutexGuard};

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

/// burn's CPU backend keeps one random generator per process: two runs in one process (tests,
/// a library caller) that seed it and draw initial weights at the same time would interleave
/// their draws. A run holds this from seeding its backbone until its head is drawn.
static INITIAL_DRAWS: Mutex<()> = Mutex::new(());

/// The lock on the process's weight draws; a run that panicked while holding it left no state.
pub fn initial_draws() -> MutexGuard<'static, ()> {
    INITIAL_DRAWS.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
