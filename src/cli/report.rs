use std::path::{Path, PathBuf};

use crate::report::{RunData, compare_html, find_runs, write_report};

/// `tlrun report RUN_DIR`: rebuild report.html and the plots.
pub fn report(folder: &Path) -> u8 {
    match RunData::load(folder).and_then(|run| write_report(&run)) {
        Ok(path) => {
            println!("{}", path.display());
            0
        }
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, folder);
            2
        }
    }
}

/// `tlrun runs`: every run under runs/, oldest first.
pub fn runs(root: &Path) -> u8 {
    let runs = find_runs(&root.join("runs"));
    if runs.is_empty() {
        println!("no runs under {}", root.join("runs").display());
        return 0;
    }
    println!("{:<12} {:<16} {:>8} {:>7} {:>8}  folder", "recipe", "started (UTC)", "best", "epochs", "seconds");
    for run in &runs {
        let best = run.best_accuracy().map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
        let state = if run.summary.is_some() { "" } else { "  (interrupted)" };
        println!(
            "{:<12} {:<16} {:>8} {:>7} {:>8.0}  {}{state}",
            run.recipe,
            run.started(),
            best,
            run.metrics.len(),
            run.seconds(),
            run.folder.display()
        );
    }
    0
}

/// `tlrun compare SWEEP_A SWEEP_B`: the paired difference of the first against each other, over
/// the seeds (and other values) they share, with its 95% interval.
fn compare_sweeps(folders: &[PathBuf], sweeps: &[crate::report::sweep_summary::SweepSummary], out: &Path) -> u8 {
    use crate::report::sweep_summary::{compare, describe_difference, mean_and_spread};
    for (folder, sweep) in folders.iter().zip(sweeps) {
        for group in &sweep.groups {
            println!("{:<16} {:<32} {}", sweep.recipe, crate::report::sweep_summary::describe(&group.values), mean_and_spread(group));
        }
        println!("{:<16} ({})", "", folder.display());
    }
    let labels = sweep_labels(folders, sweeps);
    let (first, others) = sweeps.split_first().expect("compare takes two folders or more");
    for (other, label) in others.iter().zip(&labels[1..]) {
        match compare(first, other) {
            Some(difference) => println!("{}", describe_difference(&labels[0], label, &difference)),
            None => println!("{} and {label} share fewer than two seeds: no paired comparison", labels[0]),
        }
    }
    write_sweep_comparison(sweeps, out)
}

/// What a sentence calls each sweep: its recipe's name, or its folder when sweeps share the name
/// (two variants of one recipe once read "digits-transfer beats digits-transfer").
fn sweep_labels(folders: &[PathBuf], sweeps: &[crate::report::sweep_summary::SweepSummary]) -> Vec<String> {
    let shared = |name: &str| sweeps.iter().filter(|sweep| sweep.recipe == name).count() > 1;
    folders.iter().zip(sweeps).map(|(folder, sweep)| if shared(&sweep.recipe) { folder.display().to_string() } else { sweep.recipe.clone() }).collect()
}

fn write_sweep_comparison(sweeps: &[crate::report::sweep_summary::SweepSummary], out: &Path) -> u8 {
    match crate::report::compare_sweeps_html(sweeps).and_then(|html| crate::atomic_file::write_atomic(out, html.as_bytes())) {
        Ok(()) => {
            println!("comparison: {}", out.display());
            0
        }
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, out);
            2
        }
    }
}

/// After a run of several recipes: the sweeps among them (in `folders`) compared, the first
/// against each other, as `tlrun compare` would.
pub fn print_sweep_pairs(folders: &[PathBuf]) {
    let sweeps: Vec<_> = folders.iter().filter_map(|folder| crate::report::sweep_summary::read(folder)).collect();
    for line in crate::report::sweep_summary::paired_lines(&sweeps) {
        println!("{line}");
    }
    // Several sweeps: runs/compare.html holds them side by side.
    if sweeps.len() > 1 {
        let _ = std::fs::create_dir_all("runs");
        write_sweep_comparison(&sweeps, &PathBuf::from("runs").join("compare.html"));
    }
}

/// `tlrun compare A B …`: a table on stdout and compare.html with overlaid curves; for sweep
/// folders, their means over seeds and the paired difference with its interval.
pub fn compare(folders: &[PathBuf], out: &Path) -> u8 {
    let sweeps: Vec<_> = folders.iter().filter_map(|folder| crate::report::sweep_summary::read(folder)).collect();
    if sweeps.len() == folders.len() {
        return compare_sweeps(folders, &sweeps, out);
    }
    let mut runs = Vec::new();
    for folder in folders {
        match RunData::load(folder) {
            Ok(run) => runs.push(run),
            Err(diagnostic) => {
                super::output::print_runtime_error(&diagnostic, folder);
                return 2;
            }
        }
    }
    println!("{:<12} {:>9} {:>8} {:>7} {:>8}", "recipe", "final", "best", "epochs", "seconds");
    for run in &runs {
        let final_accuracy = run.metrics.last().map_or("-".into(), |m| format!("{:.1}%", m.valid_accuracy * 100.0));
        let best = run.best_accuracy().map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
        println!("{:<12} {:>9} {:>8} {:>7} {:>8.0}", run.recipe, final_accuracy, best, run.metrics.len(), run.seconds());
    }
    match compare_html(&runs).and_then(|html| crate::atomic_file::write_atomic(out, html.as_bytes())) {
        Ok(()) => {
            println!("comparison: {}", out.display());
            0
        }
        Err(diagnostic) => {
            super::output::print_runtime_error(&diagnostic, out);
            2
        }
    }
}
