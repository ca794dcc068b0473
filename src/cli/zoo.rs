use std::path::PathBuf;

use clap::{Args, Subcommand};

use crate::arch;
use crate::runtime::weights;
use crate::sha256::sha256_file;
use crate::zoo::{CARD_FILE, Card, WEIGHTS_FILE, Zoo};

#[derive(Subcommand)]
pub enum ZooCommand {
    /// List the zoo's entries.
    List,
    /// Print an entry's card and check it.
    Show { name: String },
    /// Add a weights file (safetensors, or a torch.save state_dict .pth/.pt) with its card.
    Import(ImportArgs),
    /// Check hashes and that every tensor fits its architecture (all entries, or those named).
    Verify { names: Vec<String> },
}

#[derive(Args)]
pub struct ImportArgs {
    pub weights: PathBuf,
    #[arg(long)]
    pub name: String,
    /// resnet18, resnet34, resnet50 or resnet_small.
    #[arg(long)]
    pub arch: String,
    /// Preset statistics: `imagenet` (mean 0.485 0.456 0.406, std 0.229 0.224 0.225).
    #[arg(long)]
    pub stats: Option<String>,
    #[arg(long, num_args = 3)]
    pub mean: Option<Vec<f64>>,
    #[arg(long, num_args = 3)]
    pub std: Option<Vec<f64>>,
    /// Input size the weights were trained at (default: the architecture's).
    #[arg(long)]
    pub size: Option<u32>,
    /// Class names, comma-separated.
    #[arg(long, value_delimiter = ',')]
    pub classes: Vec<String>,
    #[arg(long, default_value = "")]
    pub trained_on: String,
    #[arg(long, default_value = "")]
    pub provenance: String,
    #[arg(long, default_value = "")]
    pub license: String,
    /// The images the weights were trained on, where a run can load them (a class folder), so
    /// that recipes starting from this entry measure what fine-tuning forgets.
    #[arg(long)]
    pub source_data: Option<PathBuf>,
}

pub fn run(command: &ZooCommand, zoo: &Zoo) -> u8 {
    match command {
        ZooCommand::List => {
            let names = zoo.entry_names();
            if names.is_empty() {
                println!("no entries in {}", zoo.root.display());
                return 0;
            }
            println!("{:<20} {:<13} {:>5}  trained on", "name", "architecture", "size");
            for name in names {
                match zoo.card(&name) {
                    Ok(card) => println!("{:<20} {:<13} {:>5}  {}", card.name, card.architecture, card.input_size, card.trained_on),
                    Err(error) => println!("{name:<20} (broken card: {error})"),
                }
            }
            0
        }
        ZooCommand::Show { name } => match zoo.card(name) {
            Ok(card) => {
                match card.to_toml() {
                    Ok(text) => print!("{text}"),
                    Err(diagnostic) => {
                        eprintln!("error: {}", diagnostic.message);
                        return 1;
                    }
                }
                show_domain(zoo, name, &card);
                verify_entry(zoo, name)
            }
            Err(error) => super::output::usage_error(error),
        },
        ZooCommand::Verify { names } => {
            let names = if names.is_empty() { zoo.entry_names() } else { names.clone() };
            names.iter().map(|name| verify_entry(zoo, name)).max().unwrap_or(0)
        }
        ZooCommand::Import(args) => import(args, zoo),
    }
}

/// What a later recipe can measure against: the source images and their feature statistics.
fn show_domain(zoo: &Zoo, name: &str, card: &crate::zoo::Card) {
    println!("\n# domain");
    match crate::check::recipe::DataSource::from_card_text(&card.source_data) {
        Some(source) => println!("# source images: {} (recipes starting here measure forgetting on them)", source.describe()),
        None => println!("# source images: unknown (no forgetting curve; `zoo import --source-data FOLDER` records them)"),
    }
    match crate::zoo::read_feature_stats(&zoo.entry_dir(name)) {
        Some((layer, stats)) => {
            let trace = stats.total_variance();
            println!(
                "# feature statistics: {} images at `{layer}`, {} features, total variance {trace:.3} (`tlrun probe` measures a recipe's images against them)",
                stats.images,
                stats.width()
            );
        }
        None => println!("# feature statistics: none (`publish` writes them)"),
    }
    println!("# pixel statistics the weights expect: mean {:?}, std {:?}", card.mean, card.std);
}

fn verify_entry(zoo: &Zoo, name: &str) -> u8 {
    let card = match zoo.card(name) {
        Ok(card) => card,
        Err(error) => {
            println!("{name}: FAILED: {error}");
            return 1;
        }
    };
    let weights_path = zoo.entry_dir(name).join(WEIGHTS_FILE);
    match sha256_file(&weights_path) {
        Ok(sha) if sha == card.sha256 => {}
        Ok(sha) => {
            println!("{name}: FAILED: sha256 is {sha}, the card says {}", card.sha256);
            return 1;
        }
        Err(error) => {
            println!("{name}: FAILED: cannot read {}: {error}", weights_path.display());
            return 1;
        }
    }
    let Some(architecture) = arch::lookup(&card.architecture) else {
        println!("{name}: FAILED: unknown architecture `{}`", card.architecture);
        return 1;
    };
    if let Err(problem) = verify_features(zoo, name, &card, architecture) {
        println!("{name}: FAILED: {problem}");
        return 1;
    }
    match weights::check_backbone_file(architecture, card.channels, &weights_path) {
        Ok(report) => {
            println!("{name}: ok ({} tensors fit {}, {} unused)", report.applied, architecture.name, report.unused.len());
            0
        }
        Err(diagnostic) => {
            println!("{name}: FAILED: {}", diagnostic.message);
            1
        }
    }
}

/// features.safetensors, when the card names one: its sha256, and statistics as wide as the
/// layer the card says they were taken at.
fn verify_features(zoo: &Zoo, name: &str, card: &crate::zoo::Card, architecture: &arch::Architecture) -> Result<(), String> {
    if card.features_sha256.is_empty() {
        return Ok(());
    }
    let path = zoo.entry_dir(name).join(crate::zoo::FEATURES_FILE);
    let sha = sha256_file(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    if sha != card.features_sha256 {
        return Err(format!("{} has sha256 {sha}, the card says {}", path.display(), card.features_sha256));
    }
    let bytes = std::fs::read(&path).map_err(|error| format!("cannot read {}: {error}", path.display()))?;
    let (layer, stats) = crate::zoo::feature_stats::decode(&bytes).map_err(|error| format!("{}: {error}", path.display()))?;
    if layer != card.feature_layer {
        return Err(format!("{} holds statistics of `{layer}`, the card says `{}`", path.display(), card.feature_layer));
    }
    let index = architecture.layer_index(&layer).ok_or_else(|| format!("{} has no layer `{layer}`", architecture.name))?;
    let (channels, _) = architecture.output_after(index + 1);
    if stats.width() != channels as usize {
        return Err(format!("{} holds {} features at `{layer}`, which gives {channels}", path.display(), stats.width()));
    }
    Ok(())
}

fn import(args: &ImportArgs, zoo: &Zoo) -> u8 {
    let Some(architecture) = arch::lookup(&args.arch) else {
        let known: Vec<&str> = arch::names().collect();
        return super::output::usage_error(format!("unknown architecture `{}` (built-in: {})", args.arch, known.join(", ")));
    };
    let mut stats = architecture.default_stats.clone();
    match args.stats.as_deref() {
        None => {}
        Some("imagenet") => stats = arch::Stats::imagenet(stats.input_size),
        Some(other) => return super::output::usage_error(format!("unknown stats preset `{other}` (known: imagenet)")),
    }
    if let Some(mean) = &args.mean {
        stats.mean = mean.clone();
    }
    if let Some(std) = &args.std {
        stats.std = std.clone();
    }
    if let Some(size) = args.size {
        stats.input_size = size;
    }
    let folder = zoo.entry_dir(&args.name);
    let weights_path = folder.join(WEIGHTS_FILE);
    // Loaded first, then re-saved as canonical torchvision-named safetensors (a .pth becomes
    // safetensors here): a file that does not fit never enters the zoo.
    let report = match weights::import_backbone_file(architecture, stats.channels, &args.weights, &weights_path) {
        Ok(report) => report,
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, &args.weights);
            return 1;
        }
    };
    if !report.unused.is_empty() {
        eprintln!("note: {} key(s) not used by {}: {}", report.unused.len(), architecture.name, report.unused.iter().take(8).cloned().collect::<Vec<_>>().join(", "));
    }
    let sha256 = match sha256_file(&weights_path) {
        Ok(sha256) => sha256,
        Err(error) => return super::output::usage_error(format!("cannot read back {}: {error}", weights_path.display())),
    };
    let mut card = Card {
        name: args.name.clone(),
        architecture: architecture.name.to_string(),
        mean: stats.mean,
        std: stats.std,
        input_size: stats.input_size,
        channels: stats.channels,
        classes: args.classes.clone(),
        trained_on: args.trained_on.clone(),
        provenance: if args.provenance.is_empty() { format!("imported from {}", args.weights.display()) } else { args.provenance.clone() },
        license: args.license.clone(),
        sha256,
        source_data: args.source_data.as_ref().map(|folder| std::fs::canonicalize(folder).unwrap_or_else(|_| folder.clone()).display().to_string()).unwrap_or_default(),
        features_sha256: String::new(),
        feature_layer: String::new(),
        source_valid: String::new(),
        source_pixel_mean: Vec::new(),
        source_pixel_std: Vec::new(),
    };
    // With the source images, the entry also keeps their feature statistics (for the Fréchet
    // distance of later recipes' images), like a published entry.
    if let Some(source) = &args.source_data {
        match crate::runtime::publish::import_feature_stats(&card, &weights_path, source, &folder) {
            Ok(measured) => {
                card.feature_layer = measured.layer;
                card.features_sha256 = measured.features_sha256;
                card.source_pixel_mean = measured.pixel_mean;
                card.source_pixel_std = measured.pixel_std;
            }
            Err(diagnostic) => {
                super::output::print_runtime_error(&diagnostic, &args.weights);
                return 1;
            }
        }
    }
    if let Err(diagnostic) = card.to_toml().and_then(|text| crate::atomic_file::write_atomic(&folder.join(CARD_FILE), text.as_bytes())) {
        super::output::print_runtime_error(&diagnostic, &args.weights);
        return 1;
    }
    println!("imported {} ({} tensors) into {}", args.name, report.applied, folder.display());
    0
}
