use std::path::PathBuf;
use std::time::Instant;

use clap::Args;

use crate::runtime::benchmark::{measure, peak_memory_mib};

#[derive(Args)]
pub struct BenchArgs {
    /// Timed steps per network (after 2 warm-up steps).
    #[arg(long, default_value_t = 8)]
    pub steps: usize,
    /// Skip resnet18 at 64px (the slow one).
    #[arg(long)]
    pub quick: bool,
    /// Recipes to time `lint` on (default: pipelines/).
    #[arg(long, default_value = "pipelines")]
    pub recipes: PathBuf,
}

pub fn run(args: &BenchArgs) -> u8 {
    println!("threads: {}", rayon::current_num_threads());
    println!("{:<14} {:>5} {:>6} {:>12} {:>12}", "network", "size", "batch", "train img/s", "infer img/s");
    let mut cases = vec![("resnet_small", 32)];
    if !args.quick {
        cases.push(("resnet18", 64));
    }
    for (architecture, size) in cases {
        let result = match measure(architecture, size, 64, 2, args.steps) {
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
    }
    println!("data pipeline (batch copy + flip/crop + tensor, 32px): {:.0} img/s", crate::runtime::benchmark::data_images_per_second(32, 64));
    if let Some(peak) = peak_memory_mib() {
        println!("peak memory: {peak:.0} MiB");
    }
    lint_latency(&args.recipes);
    0
}

/// Parse + check every recipe in the folder many times; report the mean per recipe.
fn lint_latency(folder: &PathBuf) {
    let Ok(entries) = std::fs::read_dir(folder) else { return };
    let sources: Vec<(String, String)> = entries
        .filter_map(Result::ok)
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "tl"))
        .filter_map(|path| Some((path.file_stem()?.to_string_lossy().into_owned(), std::fs::read_to_string(&path).ok()?)))
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
