//! Which kernels a tensor runs: tlrun's (`kernels/`, through runtime's `conv`, `batch_norm`,
//! `add_relu`, `max_pool` and `fused_adamw`) or burn's own. One rule for every op, so they never
//! disagree.

use burn::backend::DispatchDevice;
use burn::prelude::*;
use burn::tensor::DType;

/// `TLRUN_BURN_KERNELS=1` runs burn's own ops (convolution, batch norm, ReLU and the residual add,
/// max pool, AdamW) everywhere: the reference,
/// for comparing a run's numbers or speed with tlrun's kernels (docs/performance.md).
pub fn burn_kernels_only() -> bool {
    static ONLY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ONLY.get_or_init(|| std::env::var_os("TLRUN_BURN_KERNELS").is_some_and(|value| value == "1"))
}

/// The instruction-set level tlrun's kernels use (after `TLRUN_KERNELS_ISA`) and the best this
/// CPU has, by name: what `tlrun bench` prints beside its figures.
pub fn instruction_sets() -> (&'static str, &'static str) {
    (tlrun_kernels::isa::current().name(), tlrun_kernels::isa::detected().name())
}

/// tlrun's kernels take `x`: it is f32 on flex (with or without autodiff), and burn's kernels
/// were not asked for. Each op adds the shapes it covers.
pub fn runs_tlrun_kernels<const D: usize>(x: &Tensor<D>) -> bool {
    let on_flex = match x.device().as_dispatch().clone().inner() {
        DispatchDevice::Flex(_) => true,
        #[allow(unreachable_patterns)]
        _ => false,
    };
    !burn_kernels_only() && on_flex && x.dtype() == DType::F32
}
