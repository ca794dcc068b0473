//! PNG plots with plotters, drawn into memory and encoded with `image`. Text uses the bundled
//! DejaVu Sans, so plots look the same on every machine and need no system fonts.

use std::collections::BTreeMap;
use std::sync::Once;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::run_data::RunData;
use crate::run_files::{EpochMetrics, Evaluation, Filters, StepRates};

const FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const WIDTH: u32 = 900;
const HEIGHT: u32 = 420;

/// An encoded PNG with its pixel size.
#[derive(Debug, Clone)]
pub struct Png {
    pub bytes: Vec<u8>,
    pub width: u32,
    pub height: u32,
}

type PlotResult = Result<(), String>;

fn register_font() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, FONT);
    });
}

/// Draw with `draw` on a white canvas and encode it as PNG.
fn render(width: u32, height: u32, draw: impl FnOnce(&DrawingArea<BitMapBackend<'_>, Shift>) -> PlotResult) -> Result<Png, String> {
    register_font();
    let mut buffer = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut buffer, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(|e| e.to_string())?;
        draw(&root)?;
        root.present().map_err(|e| e.to_string())?;
    }
    let image = image::RgbImage::from_raw(width, height, buffer).ok_or("plot buffer has the wrong size")?;
    let mut bytes = Vec::new();
    image.write_to(&mut std::io::Cursor::new(&mut bytes), image::ImageFormat::Png).map_err(|e| e.to_string())?;
    Ok(Png { bytes, width, height })
}

const PALETTE: [RGBColor; 8] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(23, 190, 207),
];

fn colour(index: usize) -> RGBColor {
    PALETTE[index % PALETTE.len()]
}

/// Global epochs (x) where a new stage starts, with its name.
fn stage_starts(metrics: &[EpochMetrics]) -> Vec<(f64, String)> {
    let mut starts = Vec::new();
    let mut previous = None;
    for m in metrics {
        if previous != Some(m.stage_index) {
            starts.push((f64::from(m.global_epoch) - 0.5, m.stage.clone()));
            previous = Some(m.stage_index);
        }
    }
    starts
}

fn range_of(values: impl Iterator<Item = f64>) -> (f64, f64) {
    let (low, high) = values.filter(|v| v.is_finite()).fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    if low > high { (0.0, 1.0) } else if (high - low).abs() < 1e-12 { (low - 0.5, high + 0.5) } else { (low, high) }
}

/// Train and valid loss, and valid accuracy, per epoch; dashed lines where stages start.
pub fn curves_png(metrics: &[EpochMetrics]) -> Result<Png, String> {
    render(WIDTH, HEIGHT, |root| {
        let (left, right) = root.split_horizontally(WIDTH / 2);
        let last = metrics.last().map_or(1.0, |m| f64::from(m.global_epoch)) + 0.5;
        let (_, loss_high) = range_of(metrics.iter().flat_map(|m| [m.train_loss, m.valid_loss]));
        let mut chart = ChartBuilder::on(&left)
            .caption("loss per epoch", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.5..last, 0.0..loss_high * 1.05)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("epoch").y_desc("cross-entropy").draw().map_err(|e| e.to_string())?;
        for (index, (name, values)) in
            [("train", metrics.iter().map(|m| m.train_loss).collect::<Vec<_>>()), ("valid", metrics.iter().map(|m| m.valid_loss).collect())]
                .into_iter()
                .enumerate()
        {
            // Epochs that `valid every …` did not evaluate have no valid point.
            let points: Vec<(f64, f64)> = metrics.iter().zip(values).map(|(m, v)| (f64::from(m.global_epoch), v)).filter(|(_, v)| v.is_finite()).collect();
            chart
                .draw_series(LineSeries::new(points.clone(), colour(index).stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour(index).stroke_width(2)));
            chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour(index).filled()))).map_err(|e| e.to_string())?;
        }
        draw_stage_lines(&mut chart, metrics, 0.0, loss_high * 1.05)?;
        chart.configure_series_labels().background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())?;

        let mut chart = accuracy_chart(&right, last)?;
        let points: Vec<(f64, f64)> = accuracy_points(metrics);
        chart.draw_series(LineSeries::new(points.clone(), colour(2).stroke_width(2))).map_err(|e| e.to_string())?;
        chart.draw_series(points.into_iter().map(|p| Circle::new(p, 3, colour(2).filled()))).map_err(|e| e.to_string())?;
        draw_stage_lines(&mut chart, metrics, 0.0, 100.0)?;
        draw_outcome_marks(&mut chart, metrics)
    })
}

/// `keep best`: a ring around the epoch whose weights the stage kept; early stopping: "stopped"
/// under the epoch after which the stage ended.
fn draw_outcome_marks(chart: &mut Chart<'_, '_>, metrics: &[EpochMetrics]) -> PlotResult {
    for m in metrics {
        let point = (f64::from(m.global_epoch), m.valid_accuracy * 100.0);
        if m.restored {
            chart.draw_series(std::iter::once(Circle::new(point, 8, colour(3).stroke_width(2)))).map_err(|e| e.to_string())?;
            chart
                .draw_series(std::iter::once(Text::new("kept", (point.0 + 0.08, (point.1 - 6.0).max(2.0)), ("sans-serif", 13))))
                .map_err(|e| e.to_string())?;
        }
        if m.stopped_early {
            chart
                .draw_series(std::iter::once(Text::new("stopped", (point.0 + 0.08, (point.1 + 4.0).min(96.0)), ("sans-serif", 13))))
                .map_err(|e| e.to_string())?;
        }
    }
    Ok(())
}

type Chart<'a, 'b> = ChartContext<'a, BitMapBackend<'b>, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>;

/// Valid accuracy (%) against epochs 1..`last`.
fn accuracy_chart<'a, 'b>(area: &'a DrawingArea<BitMapBackend<'b>, Shift>, last: f64) -> Result<Chart<'a, 'b>, String> {
    let mut chart = ChartBuilder::on(area)
        .caption("valid accuracy per epoch", ("sans-serif", 18))
        .margin(12)
        .x_label_area_size(32)
        .y_label_area_size(48)
        .build_cartesian_2d(0.5..last, 0.0..100.0)
        .map_err(|e| e.to_string())?;
    chart.configure_mesh().x_desc("epoch").y_desc("%").draw().map_err(|e| e.to_string())?;
    Ok(chart)
}

fn accuracy_points(metrics: &[EpochMetrics]) -> Vec<(f64, f64)> {
    metrics.iter().filter(|m| m.valid_accuracy.is_finite()).map(|m| (f64::from(m.global_epoch), m.valid_accuracy * 100.0)).collect()
}

fn draw_stage_lines<DB: DrawingBackend>(
    chart: &mut ChartContext<'_, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, plotters::coord::types::RangedCoordf64>>,
    metrics: &[EpochMetrics],
    low: f64,
    high: f64,
) -> PlotResult {
    for (x, name) in stage_starts(metrics) {
        chart
            .draw_series(DashedLineSeries::new(vec![(x, low), (x, high)], 6, 4, BLACK.mix(0.5).stroke_width(1)))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(std::iter::once(Text::new(name, (x + 0.05, high * 0.97 + low * 0.03), ("sans-serif", 13))))
            .map_err(|e| e.to_string())?;
    }
    Ok(())
}

/// The learning rate of every group over the optimizer steps (log scale): discriminative rates and
/// the schedule made visible. Frozen groups (rate 0) are left out of the line.
pub fn lr_png(steps: &[StepRates]) -> Result<Png, String> {
    render(WIDTH, HEIGHT, |root| {
        let groups: Vec<String> = steps.first().map(|s| s.rates.keys().cloned().collect()).unwrap_or_default();
        let positive = steps.iter().flat_map(|s| s.rates.values().copied()).filter(|r| *r > 0.0);
        let (low, high) = range_of(positive);
        let (low, high) = (low.max(1e-12) / 1.5, high * 1.5);
        let last = steps.last().map_or(1.0, |s| s.step as f64 + 1.0);
        let mut chart = ChartBuilder::on(root)
            .caption("learning rate per group and step", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(0.0..last, (low..high).log_scale())
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("step").y_desc("lr").y_label_formatter(&|v| format!("{v:.0e}")).draw().map_err(|e| e.to_string())?;
        for (index, group) in groups.iter().enumerate() {
            // Break the line where the group is frozen.
            let mut segment: Vec<(f64, f64)> = Vec::new();
            let mut segments = Vec::new();
            for step in steps {
                let rate = step.rates.get(group).copied().unwrap_or(0.0);
                if rate > 0.0 {
                    segment.push((step.step as f64, rate));
                } else if !segment.is_empty() {
                    segments.push(std::mem::take(&mut segment));
                }
            }
            segments.push(segment);
            let mut labelled = false;
            for segment in segments.into_iter().filter(|s| !s.is_empty()) {
                let series = chart.draw_series(LineSeries::new(segment, colour(index).stroke_width(2))).map_err(|e| e.to_string())?;
                if !labelled {
                    series.label(group.clone()).legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour(index).stroke_width(2)));
                    labelled = true;
                }
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())
    })
}

/// Image side per epoch: progressive resizing.
pub fn sizes_png(metrics: &[EpochMetrics]) -> Result<Png, String> {
    render(WIDTH, 300, |root| {
        let last = metrics.last().map_or(1.0, |m| f64::from(m.global_epoch)) + 0.5;
        let high = metrics.iter().map(|m| f64::from(m.size)).fold(1.0, f64::max) * 1.15;
        let mut chart = ChartBuilder::on(root)
            .caption("image size per epoch", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(0.5..last, 0.0..high)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("epoch").y_desc("px").draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(metrics.iter().map(|m| {
                let x = f64::from(m.global_epoch);
                Rectangle::new([(x - 0.35, 0.0), (x + 0.35, f64::from(m.size))], colour(m.stage_index).mix(0.8).filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(metrics.iter().map(|m| {
                Text::new(format!("{}", m.size), (f64::from(m.global_epoch) - 0.25, f64::from(m.size) + high * 0.02), ("sans-serif", 12))
            }))
            .map_err(|e| e.to_string())?;
        draw_stage_lines(&mut chart, metrics, 0.0, high)
    })
}

/// Confusion matrix on valid: rows are the true class, columns the prediction.
pub fn confusion_png(evaluation: &Evaluation, classes: &[String]) -> Result<Png, String> {
    let count = evaluation.confusion.len().max(1);
    let cell = (420 / count as u32).clamp(24, 60);
    let side = cell * count as u32;
    render(side + 220, side + 160, |root| {
        let root = root.margin(24, 20, 20, 200);
        let largest = evaluation.confusion.iter().flatten().copied().max().unwrap_or(1).max(1);
        root.draw(&Text::new("confusion matrix (rows: true, columns: predicted)", (0, -10), ("sans-serif", 15))).map_err(|e| e.to_string())?;
        for (row, counts) in evaluation.confusion.iter().enumerate() {
            for (column, value) in counts.iter().enumerate() {
                let shade = 1.0 - f64::from(*value) / f64::from(largest);
                let fill = RGBColor((255.0 * shade) as u8, (255.0 * (0.55 + 0.45 * shade)) as u8, 255);
                let (x, y) = (column as i32 * cell as i32, 20 + row as i32 * cell as i32);
                root.draw(&Rectangle::new([(x, y), (x + cell as i32, y + cell as i32)], fill.filled())).map_err(|e| e.to_string())?;
                root.draw(&Rectangle::new([(x, y), (x + cell as i32, y + cell as i32)], BLACK.mix(0.3))).map_err(|e| e.to_string())?;
                let text_colour = if shade < 0.5 { WHITE } else { BLACK };
                root.draw(&Text::new(value.to_string(), (x + cell as i32 / 3, y + cell as i32 / 3), ("sans-serif", 14).into_font().color(&text_colour)))
                    .map_err(|e| e.to_string())?;
            }
            let name = classes.get(row).cloned().unwrap_or_else(|| row.to_string());
            root.draw(&Text::new(name, (side as i32 + 8, 20 + row as i32 * cell as i32 + cell as i32 / 3), ("sans-serif", 13))).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}

/// First-layer filters before (top row) and after (bottom row) training, each filter scaled to
/// its own range so colour blobs and edge detectors show.
pub fn filters_png(filters: &Filters) -> Result<Png, String> {
    let [out, input, kernel, _] = match filters.shape.as_slice() {
        [a, b, c, d] => [*a, *b, *c, *d],
        _ => return Err("filters.json has no 4-d shape".into()),
    };
    let shown = out.min(32);
    let scale = (96 / kernel.max(1)).max(4) as i32;
    let tile = kernel as i32 * scale + 6;
    render((shown as i32 * tile + 140) as u32, (2 * tile + 70) as u32, |root| {
        for (row, (label, weights)) in [("before", &filters.before), ("after", &filters.after)].into_iter().enumerate() {
            let top = 30 + row as i32 * tile;
            root.draw(&Text::new(label, (6, top + tile / 3), ("sans-serif", 15))).map_err(|e| e.to_string())?;
            for filter in 0..shown {
                let size = input * kernel * kernel;
                let span = |w: &Vec<f32>| w.get(filter * size..(filter + 1) * size).map(<[f32]>::to_vec).unwrap_or_default();
                // One range for before and after, so the two rows compare.
                let both: Vec<f32> = span(&filters.before).into_iter().chain(span(&filters.after)).collect();
                let (low, high) = both.iter().fold((f32::MAX, f32::MIN), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
                let values = span(weights);
                for y in 0..kernel {
                    for x in 0..kernel {
                        let channel = |c: usize| {
                            let c = c.min(input - 1);
                            let v = values.get(c * kernel * kernel + y * kernel + x).copied().unwrap_or(0.0);
                            ((v - low) / (high - low).max(1e-12) * 255.0) as u8
                        };
                        let fill = RGBColor(channel(0), channel(1), channel(2));
                        let left = 100 + filter as i32 * tile + x as i32 * scale;
                        let upper = top + y as i32 * scale;
                        root.draw(&Rectangle::new([(left, upper), (left + scale, upper + scale)], fill.filled())).map_err(|e| e.to_string())?;
                    }
                }
            }
        }
        root.draw(&Text::new("first-layer filters (conv1), each scaled to its own range", (6, 6), ("sans-serif", 15))).map_err(|e| e.to_string())
    })
}

/// Relative L2 change ‖after − before‖ / ‖before‖ of each weight tensor, in network order: where
/// fine-tuning moved the network, and where forgetting could happen.
pub fn movement_png(movement: &BTreeMap<String, f64>) -> Result<Png, String> {
    let mut rows: Vec<(String, f64)> = movement
        .iter()
        .filter(|(path, _)| path.ends_with(".weight") && !path.contains("bn") && !path.contains("downsample.bn"))
        .map(|(path, value)| (path.trim_start_matches("backbone.").to_string(), *value))
        .collect();
    rows.sort_by_key(|(name, _)| network_order(name));
    let height = (rows.len() as u32 * 18 + 90).max(200);
    render(WIDTH, height, |root| {
        let high = rows.iter().map(|(_, v)| *v).fold(1e-9, f64::max) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption("how far each layer's weights moved (relative L2 change)", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(230)
            .build_cartesian_2d(0.0..high, 0.0..rows.len().max(1) as f64)
            .map_err(|e| e.to_string())?;
        let names: Vec<String> = rows.iter().map(|(name, _)| name.clone()).collect();
        chart
            .configure_mesh()
            .disable_y_mesh()
            .y_labels(rows.len().max(1))
            .y_label_formatter(&|y| names.get(y.floor() as usize).cloned().unwrap_or_default())
            .x_desc("relative change")
            .draw()
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(rows.iter().enumerate().map(|(index, (name, value))| {
                let group = if name.starts_with("head") { 1 } else { 0 };
                Rectangle::new([(0.0, index as f64 + 0.15), (*value, index as f64 + 0.85)], colour(group).filled())
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// Several runs' valid accuracy per epoch on one chart (`tlrun compare`).
pub fn overlay_png(runs: &[RunData]) -> Result<Png, String> {
    render(WIDTH, HEIGHT, |root| {
        let last = runs.iter().flat_map(|r| r.metrics.iter().map(|m| f64::from(m.global_epoch))).fold(1.0, f64::max) + 0.5;
        let mut chart = accuracy_chart(root, last)?;
        for (index, run) in runs.iter().enumerate() {
            let points = accuracy_points(&run.metrics);
            chart
                .draw_series(LineSeries::new(points, colour(index).stroke_width(2)))
                .map_err(|e| e.to_string())?
                .label(run.recipe.clone())
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], colour(index).stroke_width(2)));
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerRight).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())
    })
}

/// Sort key that follows the network from input to output: stem, layer1..layer4, fc, head, with
/// block numbers compared as numbers.
fn network_order(path: &str) -> (usize, Vec<(usize, String)>) {
    let first = path.split('.').next().unwrap_or("");
    let rank = match first {
        "conv1" | "bn1" => 0,
        "layer1" => 1,
        "layer2" => 2,
        "layer3" => 3,
        "layer4" => 4,
        "fc" => 5,
        _ => 6,
    };
    let parts = path.split('.').map(|part| (part.parse::<usize>().unwrap_or(usize::MAX), part.to_string())).collect();
    (rank, parts)
}

/// `tlrun lr-find`: smoothed loss against the learning rate (log scale), with fastai's `valley`
/// and `steep` suggestions marked.
pub fn lr_find_png(rates: &[f64], losses: &[f64], suggestions: &[(&str, f64)]) -> Result<Png, String> {
    render(WIDTH, HEIGHT, |root| {
        let (low, high) = range_of(rates.iter().copied().filter(|rate| *rate > 0.0));
        let (low, high) = (low.max(1e-12), high.max(low * 10.0));
        // The curve after divergence dwarfs the part that matters: cap the axis at 2x the first loss.
        let first = losses.first().copied().unwrap_or(1.0);
        let (loss_low, loss_high) = range_of(losses.iter().copied().filter(|loss| *loss <= 2.0 * first.max(1e-9)));
        let margin = (loss_high - loss_low) * 0.05;
        let mut chart = ChartBuilder::on(root)
            .caption("learning-rate range test", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d((low..high).log_scale(), (loss_low - margin)..(loss_high + margin))
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().x_desc("learning rate").y_desc("smoothed loss").x_label_formatter(&|v| format!("{v:.0e}")).draw().map_err(|e| e.to_string())?;
        let points: Vec<(f64, f64)> = rates.iter().copied().zip(losses.iter().copied()).filter(|(_, loss)| loss.is_finite()).collect();
        chart.draw_series(LineSeries::new(points.clone(), colour(0).stroke_width(2))).map_err(|e| e.to_string())?;
        for (index, (name, rate)) in suggestions.iter().enumerate() {
            let nearest = points.iter().min_by(|a, b| (a.0.ln() - rate.ln()).abs().total_cmp(&(b.0.ln() - rate.ln()).abs())).copied();
            if let Some(point) = nearest {
                let style = colour(index + 1).filled();
                chart
                    .draw_series(std::iter::once(Circle::new(point, 6, style)))
                    .map_err(|e| e.to_string())?
                    .label(format!("{name} {rate:.1e}"))
                    .legend(move |(x, y)| Circle::new((x + 8, y), 5, style));
            }
        }
        chart.configure_series_labels().position(SeriesLabelPosition::UpperLeft).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())
    })
}

/// `tlrun probe`: LogME (top) and linear-probe accuracy (bottom) against the depth of the cut —
/// the general-to-specific curve. `cuts` are (name, LogME, probe accuracy) from shallow to deep;
/// `marked` names the recommended cut.
pub fn probe_png(cuts: &[(String, f64, f64)], marked: Option<&str>) -> Result<Png, String> {
    render(WIDTH, HEIGHT + HEIGHT / 2, |root| {
        let (top, bottom) = root.split_vertically((HEIGHT + HEIGHT / 2) / 2);
        let names: Vec<String> = cuts.iter().map(|(name, _, _)| name.clone()).collect();
        let count = cuts.len().max(1) as f64;
        for (area, title, value, label) in [
            (&top, "LogME evidence per image (higher: features fit the labels better)", 1usize, "LogME"),
            (&bottom, "linear probe accuracy on held-out images", 2usize, "accuracy"),
        ] {
            let points: Vec<(f64, f64)> = cuts
                .iter()
                .enumerate()
                .map(|(index, cut)| (index as f64, if value == 1 { cut.1 } else { cut.2 * 100.0 }))
                .filter(|(_, y)| y.is_finite())
                .collect();
            let (low, high) = range_of(points.iter().map(|(_, y)| *y));
            let margin = ((high - low) * 0.1).max(1e-3);
            let mut chart = ChartBuilder::on(area)
                .caption(title, ("sans-serif", 16))
                .margin(12)
                .x_label_area_size(32)
                .y_label_area_size(56)
                .build_cartesian_2d(-0.5..(count - 0.5), (low - margin)..(high + margin))
                .map_err(|e| e.to_string())?;
            chart
                .configure_mesh()
                .x_desc("cut after")
                .y_desc(label)
                .x_labels(cuts.len().max(1))
                .x_label_formatter(&|x| names.get(x.round().max(0.0) as usize).cloned().unwrap_or_default())
                .draw()
                .map_err(|e| e.to_string())?;
            chart.draw_series(LineSeries::new(points.clone(), colour(value - 1).stroke_width(2))).map_err(|e| e.to_string())?;
            chart.draw_series(points.iter().map(|point| Circle::new(*point, 4, colour(value - 1).filled()))).map_err(|e| e.to_string())?;
            if let Some(index) = marked.and_then(|name| names.iter().position(|known| known == name)) {
                if let Some(point) = points.iter().find(|(x, _)| *x as usize == index) {
                    chart.draw_series(std::iter::once(Circle::new(*point, 8, colour(3).stroke_width(2)))).map_err(|e| e.to_string())?;
                }
            }
        }
        Ok(())
    })
}

/// The forgetting curve: source accuracy (the frozen probe) and target valid accuracy, one point
/// per stage, starting from the pretrained weights.
pub fn forgetting_png(points: &[crate::run_files::ForgettingPoint]) -> Result<Png, String> {
    render(WIDTH, HEIGHT, |root| {
        let names: Vec<String> = points.iter().map(|point| point.stage.clone()).collect();
        let count = points.len().max(1) as f64;
        let mut chart = ChartBuilder::on(root)
            .caption("what each stage cost the source task", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(32)
            .y_label_area_size(56)
            .build_cartesian_2d(-0.5..(count - 0.5), 0.0..100.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .x_desc("after stage")
            .y_desc("accuracy (%)")
            .x_labels(points.len().max(1))
            .x_label_formatter(&|x| names.get(x.round().max(0.0) as usize).cloned().unwrap_or_default())
            .draw()
            .map_err(|e| e.to_string())?;
        let series: [(&str, Vec<(f64, f64)>); 2] = [
            ("source task (frozen probe)", points.iter().enumerate().map(|(index, point)| (index as f64, point.source_accuracy * 100.0)).filter(|(_, y)| y.is_finite()).collect()),
            ("target task (valid)", points.iter().enumerate().filter_map(|(index, point)| point.target_accuracy.map(|accuracy| (index as f64, accuracy * 100.0))).collect()),
        ];
        for (index, (label, series_points)) in series.into_iter().enumerate() {
            let style = colour(index).stroke_width(2);
            chart
                .draw_series(LineSeries::new(series_points.clone(), style))
                .map_err(|e| e.to_string())?
                .label(label)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 16, y)], colour(index).stroke_width(2)));
            chart.draw_series(series_points.iter().map(|point| Circle::new(*point, 4, colour(index).filled()))).map_err(|e| e.to_string())?;
        }
        chart.configure_series_labels().position(SeriesLabelPosition::LowerLeft).background_style(WHITE.mix(0.85)).border_style(BLACK).draw().map_err(|e| e.to_string())
    })
}

/// A thumbnail for the top-losses gallery: RGB8 pixels and the caption lines under it.
pub struct GalleryTile {
    pub width: u32,
    pub height: u32,
    pub pixels: Vec<u8>,
    pub caption: [String; 2],
}

/// The gallery cells' background: no other plot uses it, so a screenshot can find the gallery.
pub const GALLERY: RGBColor = RGBColor(232, 238, 250);

/// fastai's `plot_top_losses`: the valid images with the highest loss in a grid of three
/// columns, each captioned with prediction / truth and loss / probability.
pub fn top_losses_png(tiles: &[GalleryTile]) -> Result<Png, String> {
    let layout = Gallery { columns: 3, cell: (230, 150), top: 34, image_top: 0, caption_top: 100 };
    render(layout.width(), layout.height(tiles.len(), 16), |root| {
        root.draw(&Text::new("prediction / actual, loss / probability of the prediction", (10, 8), ("sans-serif", 15))).map_err(|e| e.to_string())?;
        layout.draw(root, tiles)
    })
}

/// Where a gallery's tiles go: `columns` cells of `cell` pixels from `top`, each image
/// `image_top` and its captions `caption_top` below the cell's top.
struct Gallery {
    columns: usize,
    cell: (i32, i32),
    top: i32,
    image_top: i32,
    caption_top: i32,
}

impl Gallery {
    fn width(&self) -> u32 {
        (self.columns as i32 * self.cell.0 + 20) as u32
    }

    fn height(&self, tiles: usize, bottom: i32) -> u32 {
        (tiles.div_ceil(self.columns).max(1) as i32 * self.cell.1 + self.top + bottom) as u32
    }

    /// Each tile on the gallery's background, centred in its cell, with its two caption lines.
    fn draw(&self, root: &DrawingArea<BitMapBackend<'_>, Shift>, tiles: &[GalleryTile]) -> PlotResult {
        for (index, tile) in tiles.iter().enumerate() {
            let left = 10 + (index % self.columns) as i32 * self.cell.0;
            let top = self.top + (index / self.columns) as i32 * self.cell.1;
            let offset = (self.cell.0 - 20 - tile.width as i32) / 2;
            root.draw(&Rectangle::new([(left, top - 4), (left + self.cell.0 - 20, top + self.cell.1 - 16)], GALLERY.filled())).map_err(|e| e.to_string())?;
            for y in 0..tile.height {
                for x in 0..tile.width {
                    let at = (y as usize * tile.width as usize + x as usize) * 3;
                    let Some(pixel) = tile.pixels.get(at..at + 3) else { continue };
                    root.draw_pixel((left + offset + x as i32, top + self.image_top + y as i32), &RGBColor(pixel[0], pixel[1], pixel[2])).map_err(|e| e.to_string())?;
                }
            }
            for (line, text) in tile.caption.iter().enumerate() {
                root.draw(&Text::new(text.clone(), (left + 4, top + self.caption_top + line as i32 * 16), ("sans-serif", 13))).map_err(|e| e.to_string())?;
            }
        }
        Ok(())
    }
}

/// fastai's `show_batch`: training images as the network sees them, augmented, four to a row,
/// each captioned with its class (and, mixed, its partner's class and λ).
pub fn batch_png(tiles: &[GalleryTile]) -> Result<Png, String> {
    let layout = Gallery { columns: 4, cell: (180, 150), top: 14, image_top: 0, caption_top: 100 };
    render(layout.width(), layout.height(tiles.len(), 6), |root| layout.draw(root, tiles))
}

/// fastai's `most_confused`: (true, predicted, count) for every off-diagonal cell of the
/// confusion matrix with at least `min_count`, most frequent first (ties in matrix order).
pub fn most_confused(evaluation: &Evaluation, classes: &[String], min_count: u32) -> Vec<(String, String, u32)> {
    let name = |index: usize| classes.get(index).cloned().unwrap_or_else(|| index.to_string());
    let mut pairs: Vec<(String, String, u32)> = Vec::new();
    for (truth, row) in evaluation.confusion.iter().enumerate() {
        for (predicted, count) in row.iter().enumerate() {
            if truth != predicted && *count >= min_count {
                pairs.push((name(truth), name(predicted), *count));
            }
        }
    }
    pairs.sort_by(|a, b| b.2.cmp(&a.2));
    pairs
}

/// The most-confused bars' colour: no other plot uses it, so a screenshot can find them.
pub const CONFUSED: RGBColor = RGBColor(200, 30, 120);

/// The most confused class pairs as horizontal bars, most frequent on top.
pub fn most_confused_png(pairs: &[(String, String, u32)]) -> Result<Png, String> {
    let shown = &pairs[..pairs.len().min(12)];
    let height = (shown.len() as u32 * 26 + 90).max(160);
    render(WIDTH, height, |root| {
        // Room right of the longest bar for its label: every bar is named beside its end.
        let longest = f64::from(shown.iter().map(|pair| pair.2).max().unwrap_or(1));
        let mut chart = ChartBuilder::on(root)
            .caption("most confused: true class → predicted class", ("sans-serif", 18))
            .margin(12)
            .x_label_area_size(30)
            .y_label_area_size(10)
            .build_cartesian_2d(0.0..longest * 1.8, 0.0..shown.len().max(1) as f64)
            .map_err(|e| e.to_string())?;
        chart.configure_mesh().disable_y_mesh().y_labels(0).x_desc("valid images").draw().map_err(|e| e.to_string())?;
        chart
            .draw_series(shown.iter().rev().enumerate().map(|(index, (_, _, count))| {
                Rectangle::new([(0.0, index as f64 + 0.15), (f64::from(*count), index as f64 + 0.85)], CONFUSED.filled())
            }))
            .map_err(|e| e.to_string())?;
        chart
            .draw_series(shown.iter().rev().enumerate().map(|(index, (truth, predicted, count))| {
                Text::new(format!("{truth} → {predicted}: {count}"), (f64::from(*count) + longest * 0.02, index as f64 + 0.75), ("sans-serif", 13))
            }))
            .map_err(|e| e.to_string())?;
        Ok(())
    })
}

/// A sweep: every variant's final valid accuracy (dots) above its group of swept values other
/// than the seed, with the group's mean and ±1 sample standard deviation (error bar).
pub fn sweep_png(summary: &super::sweep_summary::SweepSummary) -> Result<Png, String> {
    let groups = &summary.groups;
    let names: Vec<String> = groups.iter().map(|group| super::sweep_summary::describe(&group.values)).collect();
    let height = HEIGHT + 40;
    render(WIDTH, height, |root| {
        let mut chart = ChartBuilder::on(root)
            .caption(format!("{}: final valid accuracy per variant, mean ± 1 sd over seeds", summary.recipe), ("sans-serif", 17))
            .margin(14)
            .x_label_area_size(70)
            .y_label_area_size(50)
            .build_cartesian_2d(-0.5..groups.len().max(1) as f64 - 0.5, 0.0..1.0)
            .map_err(|e| e.to_string())?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(groups.len().max(1))
            .x_label_formatter(&|x| {
                let index = x.round();
                if (x - index).abs() > 0.01 || index < 0.0 { String::new() } else { names.get(index as usize).cloned().unwrap_or_default() }
            })
            .y_desc("valid accuracy")
            .draw()
            .map_err(|e| e.to_string())?;
        for (index, group) in groups.iter().enumerate() {
            let x = index as f64;
            let points: Vec<(f64, f64)> = summary
                .variants
                .iter()
                .filter(|variant| variant.values.iter().filter(|(axis, _)| *axis != "seed").all(|(axis, value)| group.values.get(axis) == Some(value)))
                .map(|variant| (x + 0.12, variant.final_valid_accuracy))
                .collect();
            chart.draw_series(points.iter().map(|point| Circle::new(*point, 4, colour(0).filled()))).map_err(|e| e.to_string())?;
            if group.std.is_finite() {
                let (low, high) = (group.mean - group.std, group.mean + group.std);
                chart.draw_series(std::iter::once(PathElement::new(vec![(x, low), (x, high)], colour(1).stroke_width(3)))).map_err(|e| e.to_string())?;
                for end in [low, high] {
                    chart.draw_series(std::iter::once(PathElement::new(vec![(x - 0.06, end), (x + 0.06, end)], colour(1).stroke_width(3)))).map_err(|e| e.to_string())?;
                }
            }
            chart.draw_series(std::iter::once(Circle::new((x, group.mean), 6, colour(1).filled()))).map_err(|e| e.to_string())?;
        }
        Ok(())
    })
}
