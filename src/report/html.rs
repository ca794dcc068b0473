//! report.html: one self-contained page (images embedded as data URIs) that works offline.

use std::path::{Path, PathBuf};

use super::base64;
use super::plots::{self, Png};
use super::run_data::RunData;
use crate::diagnostics::{Code, Diagnostic};
use crate::run_files;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

fn image_tag(png: &Png, alt: &str) -> String {
    format!(
        "<img alt=\"{}\" width=\"{}\" height=\"{}\" src=\"data:image/png;base64,{}\">",
        escape(alt),
        png.width,
        png.height,
        base64::encode(&png.bytes)
    )
}

const STYLE: &str = "body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1000px;color:#222}\
h1{margin-bottom:0}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;padding:4px 10px;text-align:right}\
th{background:#f4f4f4}td:first-child,th:first-child{text-align:left}section{margin:2em 0}img{max-width:100%;height:auto;border:1px solid #eee}\
.note{color:#666}";

fn page(title: &str, body: &str) -> String {
    format!("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head>\n<body>\n{body}\n</body></html>\n", escape(title))
}

fn write(path: &Path, bytes: &[u8]) -> Result<(), Diagnostic> {
    crate::atomic_file::write_atomic(path, bytes)
}

fn plot_error(what: &str, error: String) -> Diagnostic {
    Diagnostic::new(Code::RunFolderUnwritable, format!("cannot draw the {what} plot: {error}"))
}

/// Draw every plot of a run as PNG into its folder and write report.html. Returns the report's path.
pub fn write_report(run: &RunData) -> Result<PathBuf, Diagnostic> {
    let classes: Vec<String> = run.summary.as_ref().map(|s| s.classes.clone()).unwrap_or_default();
    let mut sections = Vec::new();
    let mut plot = |file: &str, title: &str, png: Result<Png, String>, note: &str| -> Result<(), Diagnostic> {
        let png = png.map_err(|error| plot_error(title, error))?;
        write(&run.folder.join(file), &png.bytes)?;
        sections.push(format!("<section><h2>{}</h2><p class=\"note\">{}</p>{}</section>", escape(title), escape(note), image_tag(&png, title)));
        Ok(())
    };
    plot("curves.png", "Loss and accuracy", plots::curves_png(&run.metrics), "Dashed lines mark where each stage starts.")?;
    if !run.steps.is_empty() {
        plot("lr.png", "Learning rate of every group", plots::lr_png(&run.steps), "Log scale. Discriminative rates show as parallel lines; gaps are frozen groups.")?;
    }
    plot("sizes.png", "Image size per epoch", plots::sizes_png(&run.metrics), "Progressive resizing: one bar per epoch, coloured by stage.")?;
    if let Some(evaluation) = &run.evaluation {
        plot("confusion.png", "Confusion matrix (valid)", plots::confusion_png(evaluation, &classes), "Rows are the true class, columns the prediction.")?;
    }
    if let Some(filters) = &run.filters {
        plot("filters.png", "First-layer filters", plots::filters_png(filters), "The colour blobs and edge detectors that transfer is meant to keep.")?;
    }
    if !run.movement.is_empty() {
        plot("movement.png", "Weight movement per layer", plots::movement_png(&run.movement), "Relative L2 change of each weight tensor over the whole run: where fine-tuning moved the network.")?;
    }
    if let Some(first) = run.forgetting.first() {
        let scored_on = if first.scored_on == crate::run_files::SCORED_ON_PRETRAINING_VALID {
            format!("It is scored on {} images the pretraining held out (its valid images), so it compares with the pretraining's valid accuracy.", first.source_images)
        } else {
            format!(
                "It is scored on {} source images held out from the probe's fit but seen by the backbone in pretraining, so it reads higher than the pretraining's valid accuracy would (the zoo card names no held-out images).",
                first.source_images
            )
        };
        plot(
            "forgetting.png",
            "Forgetting: source task beside target task",
            plots::forgetting_png(&run.forgetting),
            &format!("Source accuracy is a linear probe fitted on the pretrained features of the source images before training, then frozen: its drop after a stage is what that stage made the backbone forget. {scored_on}"),
        )?;
    }

    if let Some(evaluation) = &run.evaluation {
        let pairs = plots::most_confused(evaluation, &classes, 1);
        if !pairs.is_empty() {
            let rows: String = pairs
                .iter()
                .take(12)
                .map(|(truth, predicted, count)| format!("<tr><td>{}</td><td>{}</td><td>{count}</td></tr>", escape(truth), escape(predicted)))
                .collect();
            let png = plots::most_confused_png(&pairs).map_err(|error| plot_error("most confused", error))?;
            write(&run.folder.join("most_confused.png"), &png.bytes)?;
            sections.push(format!(
                "<section id=\"most-confused\"><h2>Most confused</h2><p class=\"note\">Pairs of classes the final evaluation mixed up, most often first (fastai's <code>most_confused</code>).</p>\
                 <table><tr><th>true class</th><th>predicted</th><th>images</th></tr>{rows}</table>{}</section>",
                image_tag(&png, "most confused class pairs")
            ));
        }
    }
    if let Ok(bytes) = std::fs::read(run.folder.join(run_files::AUGMENTED)) {
        sections.push(augmented_section(bytes)?);
    }
    if !run.top_losses.is_empty() {
        sections.push(top_losses_section(run)?);
    }
    if let Some(shift) = &run.shift {
        sections.push(shift_section(shift));
    }
    let rows: String = run
        .metrics
        .iter()
        .map(|m| {
            // `valid every …` leaves some epochs without valid figures.
            let (valid_loss, accuracy) = if m.valid_loss.is_finite() {
                (format!("{:.4}", m.valid_loss), format!("{:.1}%", m.valid_accuracy * 100.0))
            } else {
                ("-".to_string(), "-".to_string())
            };
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.4}</td><td>{valid_loss}</td><td>{accuracy}</td><td>{:.0}</td></tr>",
                escape(&m.stage), m.epoch, m.size, m.train_loss, m.train_images_per_second
            )
        })
        .collect();
    let status = match &run.summary {
        Some(summary) => format!("finished: valid accuracy {:.1}% after {} epochs in {:.0} s", summary.final_valid_accuracy * 100.0, summary.epochs, summary.seconds),
        None => "interrupted: the run did not finish; these are its epochs so far".to_string(),
    };
    let body = format!(
        "<h1>{}</h1><p>{}</p><p class=\"note\">{}</p>\
         <table><tr><th>stage</th><th>epoch</th><th>size</th><th>train loss</th><th>valid loss</th><th>accuracy</th><th>img/s</th></tr>{rows}</table>\n{}",
        escape(&run.recipe),
        escape(&status),
        escape(&run.folder.display().to_string()),
        sections.join("\n")
    );
    let path = run.folder.join(run_files::REPORT);
    write(&path, page(&format!("tlrun report: {}", run.recipe), &body).as_bytes())?;
    Ok(path)
}

/// A page comparing runs: a table and overlaid accuracy curves.
pub fn compare_html(runs: &[RunData]) -> Result<String, Diagnostic> {
    let png = plots::overlay_png(runs).map_err(|error| plot_error("comparison", error))?;
    let rows: String = runs
        .iter()
        .map(|run| {
            let final_accuracy = run.metrics.last().map_or("-".into(), |m| format!("{:.1}%", m.valid_accuracy * 100.0));
            let best = run.best_accuracy().map_or("-".into(), |a| format!("{:.1}%", a * 100.0));
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:.0}</td></tr>",
                escape(&run.recipe), escape(&run.started()), final_accuracy, best, run.metrics.len(), run.seconds()
            )
        })
        .collect();
    let body = format!(
        "<h1>Comparison</h1><table><tr><th>recipe</th><th>run</th><th>final accuracy</th><th>best</th><th>epochs</th><th>seconds</th></tr>{rows}</table>\n<section>{}</section>",
        image_tag(&png, "valid accuracy per epoch")
    );
    Ok(page("tlrun compare", &body))
}

/// fastai's `show_batch`: augmented.png, which the run drew before training.
fn augmented_section(bytes: Vec<u8>) -> Result<String, Diagnostic> {
    let (width, height) = image::load_from_memory(&bytes)
        .map(|image| (image.width(), image.height()))
        .map_err(|error| Diagnostic::new(Code::RunFolderUnreadable, format!("cannot read {}: {error}", run_files::AUGMENTED)))?;
    let png = Png { bytes, width, height };
    Ok(format!(
        "<section id=\"augmented\"><h2>Augmented training images</h2><p class=\"note\">The first training images as the first stage sees them, augmentation applied (fastai's <code>show_batch</code>); under MixUp or CutMix, with the weight of their own class and their partner's class. Validation images are never augmented.</p>{}</section>",
        image_tag(&png, "augmented training images")
    ))
}

/// fastai's `plot_top_losses`: the gallery as PNG (top_losses.png) and a table.
fn top_losses_section(run: &RunData) -> Result<String, Diagnostic> {
    let mut tiles = Vec::new();
    for entry in &run.top_losses {
        let path = run.folder.join(&entry.thumbnail);
        let image = image::open(&path)
            .map_err(|error| Diagnostic::new(Code::RunFolderUnreadable, format!("cannot read thumbnail {}: {error}", path.display())))?
            .into_rgb8();
        tiles.push(plots::GalleryTile {
            width: image.width(),
            height: image.height(),
            pixels: image.into_raw(),
            caption: [format!("{} / {}", entry.predicted, entry.truth), format!("{:.2} / {:.2}", entry.loss, entry.probability)],
        });
    }
    let png = plots::top_losses_png(&tiles).map_err(|error| plot_error("top losses", error))?;
    write(&run.folder.join("top_losses.png"), &png.bytes)?;
    let rows: String = run
        .top_losses
        .iter()
        .map(|entry| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{}</td><td>{:.1}%</td><td>{:.3}</td></tr>",
                entry.valid_index,
                escape(&entry.truth),
                escape(&entry.predicted),
                entry.probability * 100.0,
                entry.loss
            )
        })
        .collect();
    Ok(format!(
        "<section id=\"top-losses\"><h2>Top losses</h2><p class=\"note\">The valid images the final evaluation got most wrong, highest loss first (fastai's <code>plot_top_losses</code>): prediction / actual class, then the loss and the probability given to the prediction.</p>{}\
         <table><tr><th>valid image</th><th>actual</th><th>predicted</th><th>probability</th><th>loss</th></tr>{rows}</table></section>",
        image_tag(&png, "top losses")
    ))
}

/// The domain shift measured at run start, as a table with the trade's advice when it is large.
fn shift_section(shift: &crate::run_files::DomainShift) -> String {
    let list = |values: &[f64]| values.iter().map(|value| format!("{value:.3}")).collect::<Vec<_>>().join(" ");
    let (reference_mean, reference_std, whose) = shift.reference_pixels();
    let frechet = match &shift.frechet {
        Some(distance) => format!(
            "{:.3} at {} ({:.2}x the pretraining features' variance; both at {} px)",
            distance.distance,
            escape(&distance.layer),
            distance.relative,
            distance.size
        ),
        None => "- (the zoo card keeps no feature statistics)".to_string(),
    };
    let advice: String = shift.advice().iter().map(|line| format!("<li>{}</li>", escape(line))).collect();
    let verdict = if advice.is_empty() { "<p>The images are close to the pretraining images.</p>".to_string() } else { format!("<ul>{advice}</ul>") };
    format!(
        "<section><h2>Domain shift</h2><p class=\"note\">Measured before training on {} training images against what the backbone was trained on.</p>\
         <table><tr><th></th><th>these images</th><th>{}</th></tr>\
         <tr><td>pixel mean</td><td>{}</td><td>{}</td></tr><tr><td>pixel std</td><td>{}</td><td>{}</td></tr>\
         <tr><td>Fréchet distance</td><td colspan=\"2\">{frechet}</td></tr></table>{verdict}</section>",
        shift.images,
        escape(whose),
        list(&shift.pixel_mean),
        list(reference_mean),
        list(&shift.pixel_std),
        list(reference_std),
    )
}

/// summary.html of a sweep: the groups over seeds (mean ± sd, n, range), the plot, every variant.
pub(super) fn sweep_html(summary: &super::sweep_summary::SweepSummary, png: &Png) -> String {
    use super::sweep_summary::{describe, mean_and_spread};
    let groups: String = summary
        .groups
        .iter()
        .map(|group| {
            format!(
                "<tr><td>{}</td><td>{}</td><td>{:.1}% – {:.1}%</td></tr>",
                escape(&describe(&group.values)),
                escape(&mean_and_spread(group)),
                group.min * 100.0,
                group.max * 100.0
            )
        })
        .collect();
    let variants: String = summary
        .variants
        .iter()
        .map(|variant| {
            format!(
                "<tr><td>{}</td><td>{:.1}%</td><td>{:.1}%</td><td>{:.4}</td><td>{:.0}</td></tr>",
                escape(&variant.name),
                variant.final_valid_accuracy * 100.0,
                variant.best_valid_accuracy * 100.0,
                variant.final_valid_loss,
                variant.seconds
            )
        })
        .collect();
    let body = format!(
        "<h1>Sweep: {}</h1><p class=\"note\">{} variants over {}. Means and sample standard deviations are over the seeds of each group.</p>\
         <table><tr><th>values</th><th>final valid accuracy</th><th>range</th></tr>{groups}</table><section>{}</section>\
         <h2>Every variant</h2><table><tr><th>variant</th><th>final accuracy</th><th>best</th><th>final loss</th><th>seconds</th></tr>{variants}</table>",
        escape(&summary.recipe),
        summary.variants.len(),
        escape(&summary.axes.join(", ")),
        image_tag(png, "accuracy per variant")
    );
    page(&format!("tlrun sweep: {}", summary.recipe), &body)
}

/// A page comparing sweeps: each sweep's groups over seeds (mean ± sd, n) beside its plot, and
/// the paired differences of the first against each other with their 95% intervals.
pub fn compare_sweeps_html(sweeps: &[super::sweep_summary::SweepSummary]) -> Result<String, Diagnostic> {
    use super::sweep_summary::{describe, mean_and_spread, paired_lines};
    let pairs: String = paired_lines(sweeps).iter().map(|line| format!("<li>{}</li>", escape(line))).collect();
    let mut sections = String::new();
    for sweep in sweeps {
        let png = plots::sweep_png(sweep).map_err(|error| plot_error("sweep", error))?;
        let rows: String = sweep
            .groups
            .iter()
            .map(|group| format!("<tr><td>{}</td><td>{}</td></tr>", escape(&describe(&group.values)), escape(&mean_and_spread(group))))
            .collect();
        sections.push_str(&format!(
            "<section><h2>{}</h2><table><tr><th>values</th><th>final valid accuracy</th></tr>{rows}</table>{}</section>",
            escape(&sweep.recipe),
            image_tag(&png, &sweep.recipe)
        ));
    }
    let paired = if pairs.is_empty() { "<p class=\"note\">No two sweeps share two seeds: no paired comparison.</p>".to_string() } else { format!("<ul>{pairs}</ul>") };
    let body = format!(
        "<h1>Sweeps compared</h1><p class=\"note\">Variants paired by seed (and any other value both sweeps have); intervals are 95% paired t.</p>{paired}{sections}"
    );
    Ok(page("tlrun compare: sweeps", &body))
}
