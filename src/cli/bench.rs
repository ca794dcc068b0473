use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::runtime::benchmark::{measure, peak_memory_mib};

#[derive(Args)]
pub struct BenchArgs {
    /// Timed steps per network (after 2 warm-up steps).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Only resnet_small (skip resnet18 at 28 and 64 px).
    #[arg(long)]
    pub quick: bool,
    /// Only this network at this image size, e.g. `resnet18@28` (no data-pipeline or lint
    /// figures): for profiling one network.
    #[arg(long, value_name = "NAME@PX", value_parser = parse_network)]
    pub network: Option<(String, u32)>,
    /// Images per training and inference batch.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..=4096))]
    pub batch: u32,
    /// Recipes to time `lint` on (default: pipelines/).
    #[arg(long, default_value = "pipelines")]
    pub recipes: PathBuf,
    /// Time every convolution of resnet_small at 32 px and resnet18 at 28, 64 and 224 px instead:
    /// forward, input gradient, weight gradient.
    #[arg(long)]
    pub ops: bool,
    /// With `--ops`: also write the timings as JSON lines here, for benches/ops/torch_conv.py.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// With `--ops`: timed repeats per op (the best counts).
    #[arg(long, default_value_t = 3)]
    pub repeats: usize,
}

pub fn run(args: &BenchArgs) -> u8 {
    println!("threads: {}", rayon::current_num_threads());
    let (kernels, detected) = crate::runtime::kernel_choice::instruction_sets();
    println!("kernels: {kernels} (this CPU: {detected}; TLRUN_KERNELS_ISA caps it)");
    if args.ops {
        return ops(args);
    }
    println!("{:<14} {:>5} {:>6} {:>12} {:>12}", "network", "size", "batch", "train img/s", "infer img/s");
    let mut cases = vec![("resnet_small", 32)];
    if let Some((architecture, size)) = &args.network {
        cases = vec![(architecture.as_str(), *size)];
    } else if !args.quick {
        cases.extend([("resnet18", 28), ("resnet18", 64)]);
    }
    for (architecture, size) in cases {
        let batch = args.batch as usize;
        let result = match measure(architecture, size, batch, 2, args.steps) {
            Ok(result) => result,
            Err(diagnostic) => {
                eprintln!("error[{}]: {}", diagnostic.code.as_str(), diagnostic.message);
                return 1;
            }
        };
        println!(
            "{:<14} {:>5} {:>6} {:>12.1} {:>12.1}",
            result.network, result.size, result.batch, result.train_images_per_second, result.infer_images_per_second
        );
        // `tlrun predict` on PNG files: the same network and size, decoding and resizing included.
        match crate::runtime::benchmark::predict_images_per_second(architecture, size, batch, batch * (args.steps + 2)) {
            Ok(predict) => println!(
                "predict {}@{}: {predict:.1} img/s from PNG files, decoding included ({:.0}% of infer img/s)",
                result.network,
                result.size,
                100.0 * predict / result.infer_images_per_second.max(1e-9)
            ),
            Err(diagnostic) => eprintln!("predict benchmark: {}", diagnostic.message),
        }
    }
    if args.network.is_some() {
        return 0;
    }
    println!("data pipeline (batch copy + flip/crop + tensor, 32px): {:.0} img/s", crate::runtime::benchmark::data_images_per_second(32, 64));
    if let Some(peak) = peak_memory_mib() {
        println!("peak memory: {peak:.0} MiB");
    }
    lint_latency(&args.recipes);
    lint_scaling();
    0
}

/// `resnet18@28` → ("resnet18", 28), for the architectures the zoo's recipes can name.
fn parse_network(value: &str) -> Result<(String, u32), String> {
    let (name, size) = value.split_once('@').ok_or_else(|| format!("expected NAME@PX, e.g. resnet18@28, not `{value}`"))?;
    let size: u32 = size.parse().map_err(|_| format!("`{size}` is not an image size in pixels"))?;
    if crate::arch::lookup(name).is_none() {
        return Err(format!("unknown architecture `{name}`"));
    }
    if !(8..=1024).contains(&size) {
        return Err(format!("image size {size} px is outside 8..=1024"));
    }
    Ok((name.to_string(), size))
}

/// Lint time against recipe size: 2,500 / 5,000 / 10,000 stages, and 20,000 broken items, parsed,
/// checked and rendered as people read them. Linear means each row takes about twice the one before.
fn lint_scaling() {
    let header = "recipe \"big\"\nbackbone resnet18 from none\ndata { train \"data\" batch 8 }\n";
    let stages = |count: usize| header.to_string() + &(0..count).map(|index| format!("stage s{index} {{ train all epochs 1 lr 1e-3 }}\n")).collect::<String>();
    let broken = |count: usize| header.to_string() + &"stage { train all epochs }\n".repeat(count);
    let cases = [
        ("2,500 stages", stages(2500)),
        ("5,000 stages", stages(5000)),
        ("10,000 stages", stages(10_000)),
        ("10,000 broken stages", broken(10_000)),
        ("20,000 broken stages", broken(20_000)),
    ];
    for (name, source) in cases {
        let started = Instant::now();
        let (_, diagnostics) = crate::check::check_source(&source, "big", &crate::check::NoWorld);
        let view = crate::render::FileDiagnostics { path: "big.tl", source: &source, diagnostics: &diagnostics };
        let rendered = crate::render::human(&view, crate::render::HumanStyle::Plain);
        println!(
            "lint scaling: {name:<21} {:>7.1} KB  {:>6} diagnostics  {:>7.1} ms (parse, check, human render: {} KB)",
            source.len() as f64 / 1024.0,
            diagnostics.len(),
            started.elapsed().as_secs_f64() * 1e3,
            rendered.len() / 1024
        );
    }
}

/// Parse + check every recipe in the folder many times; report the mean per recipe.
fn lint_latency(folder: &PathBuf) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    let zoo = crate::zoo::Zoo::locate(None);
    let workspace = super::workspace::Workspace::new(&zoo);
    let sources: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "tl"))
        .filter_map(|path| Some((path.file_stem()?.to_string_lossy().into_owned(), workspace.source(&path).ok()?.text.clone())))
        .collect();
    if sources.is_empty() {
        return;
    }
    let rounds = 200;
    let started = Instant::now();
    for _ in 0..rounds {
        for (stem, source) in &sources {
            let _ = crate::check::check_source(source, stem, &crate::check::NoWorld);
        }
    }
    let per_recipe = started.elapsed().as_secs_f64() / (rounds * sources.len()) as f64;
    println!("lint: {:.3} ms per recipe (parse + check, {} recipes x {rounds})", per_recipe * 1e3, sources.len());
}

/// `--ops`: every convolution shape, timed alone.
fn ops(args: &BenchArgs) -> u8 {
    use crate::runtime::conv_benchmark::{benchmark_shapes, time_conv};
    println!(
        "{:<13} {:>4} {:<19} {:>5} {:>9} {:>4} {:>4} {:>9} {:>9} {:>9} {:>8} {:>20}",
        "network", "px", "conv", "batch", "in→out", "k/s", "side", "fwd ms", "dX ms", "dW ms", "fwd GF/s", "burn's op fwd/dX/dW"
    );
    let mut totals = [[0.0f64; 3]; 2];
    let mut lines = String::new();
    for shape in benchmark_shapes() {
        let timing = time_conv(&shape, args.repeats);
        println!(
            "{:<13} {:>4} {:<19} {:>5} {:>9} {:>4} {:>4} {:>9.2} {:>9.2} {:>9.2} {:>8.1} {:>20}",
            shape.network,
            shape.image_size,
            shape.layer,
            shape.batch,
            format!("{}→{}", shape.in_channels, shape.out_channels),
            format!("{}/{}", shape.kernel, shape.stride),
            shape.side,
            timing.forward_ms,
            timing.input_grad_ms,
            timing.weight_grad_ms,
            shape.forward_flops() / (timing.forward_ms.max(1e-9) * 1e6),
            format!("{:.2}/{:.2}/{:.2}", timing.burn_forward_ms, timing.burn_input_grad_ms, timing.burn_weight_grad_ms)
        );
        for (total, value) in totals[0].iter_mut().zip([timing.forward_ms, timing.input_grad_ms, timing.weight_grad_ms]) {
            *total += value;
        }
        for (total, value) in totals[1].iter_mut().zip([timing.burn_forward_ms, timing.burn_input_grad_ms, timing.burn_weight_grad_ms]) {
            *total += value;
        }
        lines.push_str(&serde_json::to_string(&timing).unwrap_or_default());
        lines.push('\n');
    }
    let show = |values: [f64; 3]| values.map(|value| format!("{value:.0}")).join("/");
    println!(
        "all shapes: tlrun's op {} ms, burn's op {} ms (fwd/dX/dW), speed-up {}",
        show(totals[0]),
        show(totals[1]),
        [0, 1, 2].map(|i| format!("{:.2}x", totals[1][i] / totals[0][i].max(1e-9))).join("/")
    );
    let path = args.json.clone().unwrap_or_else(|| std::env::temp_dir().join(format!("tlrun-ops-{}.jsonl", std::process::id())));
    if let Err(diagnostic) = crate::atomic_file::write_atomic(&path, lines.as_bytes()) {
        eprintln!("error: {}", diagnostic.message);
        return 1;
    }
    println!("timings: {}", path.display());
    side_by_side(&path);
    0
}

/// When a Python with torch is on the PATH (and this is the repository), the same shapes timed in
/// PyTorch with as many threads, and the ratios.
fn side_by_side(timings: &std::path::Path) {
    let script = std::path::Path::new("benches/ops/torch_conv.py");
    let has_torch = std::process::Command::new("python3").args(["-c", "import torch"]).output().is_ok_and(|output| output.status.success());
    if !script.is_file() || !has_torch {
        println!("(no PyTorch side by side: run `python3 benches/ops/torch_conv.py {}` where torch is installed)", timings.display());
        return;
    }
    println!("\nPyTorch on the same shapes ({}):", script.display());
    let threads = rayon::current_num_threads().to_string();
    match std::process::Command::new("python3").arg(script).arg(timings).env("OMP_NUM_THREADS", &threads).env("MKL_NUM_THREADS", &threads).output() {
        Ok(output) => print!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr)),
        Err(error) => println!("cannot run python3: {error}"),
    }
}
