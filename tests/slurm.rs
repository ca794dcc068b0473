//! `tlrun run --on slurm` against a real one-node Slurm (Debian's slurm-wlm and munge, started by
//! `.ci/slurm-up`): a pipeline (a recipe that publishes, a swept recipe that starts from it)
//! becomes dependent jobs and a job array whose results equal a local run's, byte for byte; a
//! failing job is named with its log. `.ci/run` starts the cluster and runs this with `--ignored`;
//! without a cluster the test fails, saying why, and never skips.

use std::path::Path;
use std::process::{Command, Output};

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).env("TLRUN_ZOO", dir.join("zoo")).output().unwrap()
}

fn text(output: &Output) -> String {
    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr))
}

const UP: &str = "recipe \"up\"\nseed 1\nbackbone resnet_small from none\ndata { train synthetic \"shapes-source\" 4 per class valid synthetic \"shapes-source\" 2 per class batch 8 size 16 }\nstage s { train all epochs 1 lr 3e-3 }\npublish \"tiny\"\n";
const TRANSFER: &str = "recipe \"transfer\"\nseed 2\nbackbone resnet_small from zoo \"tiny\"\ndata { train synthetic \"shapes-target\" 4 per class valid synthetic \"shapes-target\" 4 per class batch 5 }\nstage warmup { train head epochs 1 lr 3e-3 }\nstage finetune { train all epochs 1 lr 1e-3 spread 10 }\nsweep { seed 0 1 2 }\n";
const SCRATCH: &str = "recipe \"scratch\"\nseed 2\nbackbone resnet_small from none\ndata { train synthetic \"shapes-target\" 4 per class valid synthetic \"shapes-target\" 4 per class batch 5 }\nstage s { train all epochs 2 lr 1e-3 }\nsweep { seed 0 1 2 }\n";

fn write_pipeline(dir: &Path) {
    std::fs::write(dir.join("up.tl"), UP).unwrap();
    std::fs::write(dir.join("transfer.tl"), TRANSFER).unwrap();
    std::fs::write(dir.join("scratch.tl"), SCRATCH).unwrap();
}

#[test]
#[ignore = "needs a running Slurm cluster; .ci/run starts one (.ci/slurm-up) and runs this test"]
fn slurm_runs_the_recipe_graph_as_jobs_and_gives_the_local_results() {
    let sinfo = Command::new("sinfo").args(["-h", "-o", "%T"]).output();
    let state = sinfo.as_ref().map(|output| String::from_utf8_lossy(&output.stdout).trim().to_string()).unwrap_or_default();
    assert!(state.contains("idle") || state.contains("mix") || state.contains("alloc"), "no usable Slurm cluster (sinfo: {sinfo:?}); start one with .ci/slurm-up");

    let (on_slurm, local) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    write_pipeline(on_slurm.path());
    write_pipeline(local.path());
    let submitted = tlrun(on_slurm.path(), &["run", ".", "--on", "slurm", "--wait"]);
    let printed = text(&submitted);
    assert!(submitted.status.success(), "{printed}");
    // The graph became the job graph: transfer's array waits for up's job.
    assert!(printed.contains("up: submitted job") && printed.contains("transfer: submitted job array") && printed.contains("(3 variants)"), "{printed}");
    assert_eq!(printed.matches("): completed").count(), 5, "up, two arrays, two summaries: {printed}");
    let status = tlrun(on_slurm.path(), &["status"]);
    assert_eq!(String::from_utf8_lossy(&status.stdout).matches("COMPLETED").count(), 5, "{}", text(&status));

    let ran_locally = tlrun(local.path(), &["run", ".", "--jobs", "2"]);
    assert!(ran_locally.status.success(), "{}", text(&ran_locally));
    for recipe in ["transfer", "scratch"] {
        for seed in 0..3 {
            let file = format!("runs/{recipe}/sweep/seed={seed}/weights.safetensors");
            assert_eq!(std::fs::read(on_slurm.path().join(&file)).unwrap(), std::fs::read(local.path().join(&file)).unwrap(), "{file}: Slurm and local differ");
        }
    }
    assert_eq!(std::fs::read(on_slurm.path().join("zoo/tiny/weights.safetensors")).unwrap(), std::fs::read(local.path().join("zoo/tiny/weights.safetensors")).unwrap());
    let compared = tlrun(on_slurm.path(), &["compare", "runs/transfer/sweep", "runs/scratch/sweep"]);
    assert!(String::from_utf8_lossy(&compared.stdout).contains("3 pairs, paired t"), "{}", text(&compared));

    // Submitting again sends only what is not up to date: nothing.
    let again = tlrun(on_slurm.path(), &["run", ".", "--on", "slurm", "--wait"]);
    assert!(!text(&again).contains("submitted job array"), "{}", text(&again));

    // The demo pipeline (pretrain publishes, transfer starts from the zoo entry, scratch) as
    // three jobs: the exported models equal a local run's. In folders without a zoo yet, as on a
    // fresh checkout (a zoo that lacks `shapes-small` is still TL1004 before pretrain runs).
    let (demo_slurm, demo_local) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let demo = |dir: &Path| {
        let pipelines = dir.join("pipelines");
        std::fs::create_dir_all(&pipelines).unwrap();
        for recipe in ["pretrain.tl", "transfer.tl", "scratch.tl"] {
            std::fs::copy(Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines").join(recipe), pipelines.join(recipe)).unwrap();
        }
    };
    demo(demo_slurm.path());
    demo(demo_local.path());
    let demo_on_slurm = tlrun(demo_slurm.path(), &["run", "pipelines", "--on", "slurm", "--wait"]);
    assert!(demo_on_slurm.status.success() && text(&demo_on_slurm).matches("): completed").count() == 3, "{}", text(&demo_on_slurm));
    let demo_here = tlrun(demo_local.path(), &["run", "pipelines"]);
    assert!(demo_here.status.success(), "{}", text(&demo_here));
    for exported in ["out/transfer.safetensors", "out/scratch.safetensors", "zoo/shapes-small/weights.safetensors"] {
        assert_eq!(std::fs::read(demo_slurm.path().join(exported)).unwrap(), std::fs::read(demo_local.path().join(exported)).unwrap(), "{exported}");
    }

    // A job that fails is named with its log, and --wait fails.
    std::fs::write(on_slurm.path().join("broken.tl"), "recipe \"broken\"\nbackbone resnet_small from none\ndata { train \"missing-folder\" }\nstage s { train all epochs 1 lr 1e-3 }\nexport \"b.safetensors\"\n").unwrap();
    let failing = tlrun(on_slurm.path(), &["run", "broken.tl", "--on", "slurm", "--wait"]);
    assert_eq!(failing.status.code(), Some(1), "{}", text(&failing));
    let printed = text(&failing);
    let line = printed.lines().find(|line| line.contains("(broken train): FAILED")).unwrap_or_else(|| panic!("{printed}"));
    let log = line.rsplit("log ").next().unwrap();
    assert!(std::fs::read_to_string(log).unwrap().contains("missing-folder"), "the log says why: {log}");
}
