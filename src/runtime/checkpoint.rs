//! Checkpoints: network (with its parameter ids), optimizer state, position (stage, epoch, batch,
//! schedule step, RNG state) and the rates recorded so far. Written into a fresh folder that then
//! replaces `checkpoint/`, so a crash leaves the old checkpoint or the new one, never half of one.

use std::path::{Path, PathBuf};

use burn::module::Module;
use burn::optim::ModuleOptimizer;

use super::model::Network;
use super::trainer::{Position, Snapshot};
use crate::diagnostics::{Code, Diagnostic};
use crate::run_files::StepRates;

pub const FOLDER: &str = "checkpoint";
const MODEL: &str = "model.bpk";
const OPTIMIZER: &str = "optimizer.bpk";
const POSITION: &str = "position.json";
const RATES: &str = "lr_steps.jsonl";
/// `keep best`: the weights of the stage's best epoch so far.
const BEST: &str = "best.bpk";
/// `ema`: the moving average of the weights, and how many updates it holds.
const AVERAGE: &str = "average.bpk";
const AVERAGE_UPDATES: &str = "average_updates.json";

fn io_error(path: &Path, error: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnwritable, format!("cannot write checkpoint {}: {error}", path.display()))
        .with_help("check that the run folder is writable and the disk has room")
}

fn sync(path: &Path) -> std::io::Result<()> {
    std::fs::File::open(path)?.sync_all()
}

pub fn write(run_folder: &Path, position: &Position, snapshot: Snapshot<'_>) -> Result<(), Diagnostic> {
    let Snapshot { network, optimizer, rates, best, average } = snapshot;
    let fresh = run_folder.join(format!("{FOLDER}.partial"));
    let old = run_folder.join(format!("{FOLDER}.old"));
    let current = run_folder.join(FOLDER);
    let _ = std::fs::remove_dir_all(&fresh);
    std::fs::create_dir_all(&fresh).map_err(|e| io_error(&fresh, e))?;
    // valid() syncs BatchNorm running statistics: a plain clone can hold them one update stale.
    network.valid().save_file(fresh.join(MODEL)).map_err(|e| io_error(&fresh.join(MODEL), format!("{e:?}")))?;
    optimizer.save(fresh.join(OPTIMIZER)).map_err(|e| io_error(&fresh.join(OPTIMIZER), format!("{e:?}")))?;
    let position_json = serde_json::to_string_pretty(position).map_err(|e| io_error(&fresh.join(POSITION), e))?;
    std::fs::write(fresh.join(POSITION), position_json).map_err(|e| io_error(&fresh.join(POSITION), e))?;
    std::fs::write(fresh.join(RATES), crate::run_files::json_lines(rates)).map_err(|e| io_error(&fresh.join(RATES), e))?;
    let mut files = vec![MODEL, OPTIMIZER, POSITION, RATES];
    if let Some(best) = best {
        best.valid().save_file(fresh.join(BEST)).map_err(|e| io_error(&fresh.join(BEST), format!("{e:?}")))?;
        files.push(BEST);
    }
    if let Some(average) = average {
        average.snapshot().save_file(fresh.join(AVERAGE)).map_err(|e| io_error(&fresh.join(AVERAGE), format!("{e:?}")))?;
        std::fs::write(fresh.join(AVERAGE_UPDATES), average.updates.to_string()).map_err(|e| io_error(&fresh.join(AVERAGE_UPDATES), e))?;
        files.extend([AVERAGE, AVERAGE_UPDATES]);
    }
    for file in files {
        sync(&fresh.join(file)).map_err(|e| io_error(&fresh.join(file), e))?;
    }
    // Swap: current → old, fresh → current, drop old. Between the two renames only `old` exists,
    // and `latest` finds it.
    let _ = std::fs::remove_dir_all(&old);
    if current.exists() {
        std::fs::rename(&current, &old).map_err(|e| io_error(&current, e))?;
    }
    std::fs::rename(&fresh, &current).map_err(|e| io_error(&current, e))?;
    let _ = std::fs::remove_dir_all(&old);
    if let Ok(folder) = std::fs::File::open(run_folder) {
        let _ = folder.sync_all();
    }
    Ok(())
}

/// The newest complete checkpoint of a run folder, if any.
pub fn latest(run_folder: &Path) -> Option<PathBuf> {
    [FOLDER, &format!("{FOLDER}.old")]
        .into_iter()
        .map(|name| run_folder.join(name))
        .find(|folder| folder.join(POSITION).is_file() && folder.join(MODEL).is_file())
}

pub struct Loaded {
    pub network: Network,
    pub optimizer: ModuleOptimizer,
    pub position: Position,
    pub rates: Vec<StepRates>,
    /// `keep best`: the stage's best weights so far, when the checkpoint holds them.
    pub best: Option<Network>,
    /// `ema`: the moving average and its update count, when the checkpoint holds them.
    pub average: Option<(Network, usize)>,
}

fn unreadable(path: &Path, error: impl std::fmt::Display) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnreadable, format!("cannot read checkpoint {}: {error}", path.display()))
        .with_help("the checkpoint is damaged; start the run again")
}

/// Where the checkpoint stands (the caller needs its stage to build the optimizer to load into).
pub fn position(folder: &Path) -> Result<Position, Diagnostic> {
    serde_json::from_str(&std::fs::read_to_string(folder.join(POSITION)).map_err(|e| unreadable(folder, e))?)
        .map_err(|e| unreadable(&folder.join(POSITION), e))
}

/// Load a checkpoint into a network of the same recipe and into a fresh optimizer for its stage.
pub fn load(folder: &Path, network: Network, optimizer: ModuleOptimizer) -> Result<Loaded, Diagnostic> {
    let position = position(folder)?;
    let network = network.try_load_file(folder.join(MODEL)).map_err(|e| unreadable(&folder.join(MODEL), format!("{e:?}")))?;
    let optimizer = optimizer.load(folder.join(OPTIMIZER)).map_err(|e| unreadable(&folder.join(OPTIMIZER), format!("{e:?}")))?;
    let rates = crate::run_files::read_json_lines_to_resume(&folder.join(RATES))?;
    let load_network = |file: &str| -> Result<Option<Network>, Diagnostic> {
        let path = folder.join(file);
        if !path.is_file() {
            return Ok(None);
        }
        // Not `clone`: loading writes BatchNorm running statistics in place, and a clone shares
        // them with `network`, which would end up with the best epoch's (or the average's).
        network.deep_copy().try_load_file(&path).map(Some).map_err(|e| unreadable(&path, format!("{e:?}")))
    };
    let best = load_network(BEST)?;
    let average = match load_network(AVERAGE)? {
        Some(average) => {
            let path = folder.join(AVERAGE_UPDATES);
            let text = std::fs::read_to_string(&path).map_err(|e| unreadable(&path, e))?;
            let updates = text.trim().parse::<usize>().map_err(|e| unreadable(&path, e))?;
            Some((average, updates))
        }
        None => None,
    };
    Ok(Loaded { network, optimizer, position, rates, best, average })
}
