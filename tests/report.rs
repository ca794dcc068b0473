//! Reports: plots tested on data of known shape, and a real run's report.html.

use std::collections::BTreeMap;
use std::path::Path;

use tlrun::check::recipe::OneCycle;
use tlrun::report::{RunData, lr_png, write_report};
use tlrun::run_files::StepRates;
use tlrun::runtime::schedule::onecycle_factor;

/// The blue of the first series.
const FIRST_SERIES: [u8; 3] = [31, 119, 180];

fn pixels_of(png: &[u8], colour: [u8; 3]) -> Vec<(u32, u32)> {
    let image = image::load_from_memory(png).unwrap().to_rgb8();
    image.enumerate_pixels().filter(|(_, _, pixel)| pixel.0 == colour).map(|(x, y, _)| (x, y)).collect()
}

#[test]
fn the_lr_plot_of_a_onecycle_schedule_peaks_a_quarter_of_the_way_in() {
    let total = 200;
    let steps: Vec<StepRates> = (0..total)
        .map(|step| StepRates {
            step,
            stage: "s".into(),
            rates: BTreeMap::from([("head".to_string(), 1e-3 * onecycle_factor(&OneCycle::default(), step, total))]),
        })
        .collect();
    let png = lr_png(&steps).unwrap();
    let line = pixels_of(&png.bytes, FIRST_SERIES);
    assert!(line.len() > 300, "the line is drawn ({} pixels)", line.len());
    let (left, right) = (line.iter().map(|p| p.0).min().unwrap(), line.iter().map(|p| p.0).max().unwrap());
    let top = line.iter().map(|p| p.1).min().unwrap();
    let peak_columns: Vec<u32> = line.iter().filter(|p| p.1 == top).map(|p| p.0).collect();
    let peak = f64::from(peak_columns[peak_columns.len() / 2] - left) / f64::from(right - left);
    assert!((0.2..0.3).contains(&peak), "onecycle peaks at 25% of the steps; the plot peaks at {:.0}%", peak * 100.0);
    // It ends far lower than it starts (lr/1e5 against lr/25): the last column sits low.
    let lowest_at_end = line.iter().filter(|p| p.0 == right).map(|p| p.1).max().unwrap();
    let lowest_at_start = line.iter().filter(|p| p.0 == left).map(|p| p.1).max().unwrap();
    assert!(lowest_at_end > lowest_at_start, "the curve ends below where it starts");
}

#[test]
fn a_run_folder_gets_a_self_contained_report() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("runs/demo/20261129-000000");
    std::fs::create_dir_all(&folder).unwrap();
    let metrics = [(0, "warmup", 1, 32, 0.40), (1, "finetune", 2, 32, 0.55), (1, "finetune", 3, 48, 0.70)];
    let lines: String = metrics
        .iter()
        .map(|(stage_index, stage, global_epoch, size, accuracy)| {
            serde_json::json!({"stage": stage, "stage_index": stage_index, "epoch": 1, "global_epoch": global_epoch, "size": size,
                "learning_rates": {"head": 1e-3}, "train_loss": 1.0, "valid_loss": 1.2, "valid_accuracy": accuracy,
                "train_images_per_second": 100.0, "seconds": 1.0})
            .to_string() + "\n"
        })
        .collect();
    std::fs::write(folder.join("metrics.jsonl"), lines).unwrap();
    std::fs::write(folder.join("evaluation.json"), r#"{"loss":0.8,"accuracy":0.7,"confusion":[[7,3],[3,7]]}"#).unwrap();
    std::fs::write(folder.join("movement.json"), r#"{"backbone.conv1.weight":0.01,"backbone.layer1.0.conv1.weight":0.05,"head.linears.0.weight":0.9}"#).unwrap();
    let filters = serde_json::json!({"shape": [2, 3, 3, 3], "before": vec![0.1f32; 54], "after": (0..54).map(|i| i as f32 / 54.0).collect::<Vec<_>>()});
    std::fs::write(folder.join("filters.json"), filters.to_string()).unwrap();
    // One top loss with its thumbnail, as the runtime writes them.
    std::fs::create_dir_all(folder.join("top_losses")).unwrap();
    image::RgbImage::from_pixel(12, 8, image::Rgb([200, 10, 10])).save(folder.join("top_losses/1.png")).unwrap();
    std::fs::write(
        folder.join("top_losses.json"),
        r#"[{"valid_index":4,"truth":"cat","predicted":"dog","probability":0.93,"loss":2.71,"thumbnail":"top_losses/1.png"}]"#,
    )
    .unwrap();

    let run = RunData::load(&folder).unwrap();
    assert!(run.summary.is_none(), "no summary: an interrupted run still gets a report");
    let report = write_report(&run).unwrap();
    let html = std::fs::read_to_string(&report).unwrap();
    for plot in ["curves.png", "sizes.png", "confusion.png", "filters.png", "movement.png", "most_confused.png", "top_losses.png"] {
        assert!(folder.join(plot).is_file(), "{plot} written");
    }
    assert_eq!(html.matches("src=\"data:image/png;base64,").count(), 7, "every plot embedded, nothing linked");
    // fastai's most_confused: both off-diagonal cells, as (true, predicted, count).
    assert!(html.contains("<tr><td>0</td><td>1</td><td>3</td></tr>") && html.contains("<tr><td>1</td><td>0</td><td>3</td></tr>"), "{html}");
    // fastai's plot_top_losses: the entry's classes, probability and loss.
    assert!(html.contains("<td>cat</td><td>dog</td><td>93.0%</td><td>2.710</td>"), "{html}");
    let gallery = image::open(folder.join("top_losses.png")).unwrap().to_rgb8();
    assert!(gallery.pixels().filter(|pixel| pixel.0 == [200, 10, 10]).count() >= 12 * 8, "the thumbnail is drawn into the gallery");
    assert!(!html.contains("http://") && !html.contains("https://"), "works offline");
    assert!(html.contains("interrupted"));
    assert_eq!(RunData::load(dir.path()).unwrap_err().code.as_str(), "TL4009");
}

#[test]
fn runs_and_compare_list_and_overlay_real_runs() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = |name: &str, lr: &str| format!(
        "recipe \"{name}\"\nbackbone resnet_small from none\ndata {{ train synthetic \"shapes-target\" 4 per class valid synthetic \"shapes-target\" 2 per class batch 8 size 16 }}\nstage s {{ train all epochs 2 lr {lr} }}\n"
    );
    std::fs::write(dir.path().join("a.tl"), recipe("alpha", "3e-3")).unwrap();
    std::fs::write(dir.path().join("b.tl"), recipe("beta", "1e-3")).unwrap();
    let tlrun = |args: &[&str]| std::process::Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir.path()).output().unwrap();
    assert!(tlrun(&["a.tl"]).status.success());
    assert!(tlrun(&["b.tl"]).status.success());

    let runs = tlrun(&["runs"]);
    let listing = String::from_utf8_lossy(&runs.stdout).into_owned();
    assert!(listing.lines().count() == 3 && listing.contains("alpha") && listing.contains("beta"), "{listing}");

    let folders: Vec<String> = ["alpha", "beta"]
        .iter()
        .map(|name| {
            let parent = dir.path().join("runs").join(name);
            std::fs::read_dir(&parent).unwrap().next().unwrap().unwrap().path().display().to_string()
        })
        .collect();
    let compared = tlrun(&["compare", &folders[0], &folders[1], "--out", "cmp.html"]);
    let table = String::from_utf8_lossy(&compared.stdout).into_owned();
    assert!(compared.status.success(), "{table}");
    assert!(table.contains("alpha") && table.contains("beta") && table.contains("comparison: cmp.html"), "{table}");
    let html = std::fs::read_to_string(dir.path().join("cmp.html")).unwrap();
    assert_eq!(html.matches("data:image/png;base64,").count(), 1);
    for folder in &folders {
        assert!(Path::new(folder).join("report.html").is_file(), "every run writes its report");
    }
}

/// fastai's `show_batch`: a run that augments draws its first training images as the first stage
/// sees them (augmented.png, before training) and the report shows them; the images are not the
/// plain ones, and a run that does not augment draws none.
#[test]
fn a_run_that_augments_shows_its_augmented_training_images() {
    let dir = tempfile::tempdir().unwrap();
    let run = |name: &str, augment: &str| {
        let recipe = format!(
            "recipe \"{name}\"\nseed 1\nbackbone resnet_small from none\ndata {{ train synthetic \"shapes-target\" 8 per class seed 2 valid split 0.25 batch 8 size 24 {augment} }}\nstage s {{ train all epochs 1 lr 1e-3 }}\n"
        );
        std::fs::write(dir.path().join(format!("{name}.tl")), recipe).unwrap();
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_tlrun")).current_dir(dir.path()).args([&format!("{name}.tl"), "--out", name]).output().unwrap();
        assert_eq!(output.status.code(), Some(0), "{}", String::from_utf8_lossy(&output.stderr));
        dir.path().join(name)
    };
    let augmented = run("aug", "augment rotate 30 lighting 0.4 mixup");
    let picture = image::open(augmented.join("augmented.png")).unwrap().to_rgb8();
    assert!(picture.width() >= 4 * 96 && picture.height() >= 2 * 96, "a grid of four columns: {}x{}", picture.width(), picture.height());
    let html = std::fs::read_to_string(augmented.join("report.html")).unwrap();
    assert!(html.contains("<section id=\"augmented\">") && html.contains("show_batch"), "the report shows them");
    let plain = run("plain", "");
    assert!(!plain.join("augmented.png").exists() && !std::fs::read_to_string(plain.join("report.html")).unwrap().contains("id=\"augmented\""));
}
