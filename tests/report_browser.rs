//! Look at a report as a person would: headless Chromium opens report.html, takes a screenshot,
//! and the plots must be there. Needs Debian's `chromium`; .ci/run installs it and runs this with
//! `--ignored`.

use std::path::{Path, PathBuf};
use std::process::Command;

fn chromium() -> Option<PathBuf> {
    ["/usr/bin/chromium", "/usr/bin/chromium-browser"].into_iter().map(PathBuf::from).find(|path| path.is_file())
}

fn run_demo_recipe(dir: &Path) -> PathBuf {
    std::fs::write(
        dir.join("r.tl"),
        "recipe \"browser\"\nbackbone resnet_small from none\ndata { train synthetic \"shapes-target\" 6 per class valid synthetic \"shapes-target\" 4 per class batch 10 size 16 }\nstage warmup { train head epochs 1 lr 3e-3 }\nstage finetune { train all epochs 2 lr 3e-3 resize 16 -> 24 }\n",
    )
    .unwrap();
    let output = Command::new(env!("CARGO_BIN_EXE_tlrun")).args(["r.tl", "--out", "run"]).current_dir(dir).output().unwrap();
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    dir.join("run")
}

#[test]
#[ignore = "needs chromium; .ci/run installs it and runs this test"]
fn chromium_renders_every_plot_of_a_real_run() {
    let browser = chromium().expect("chromium is installed (apt-get install chromium)");
    let dir = tempfile::tempdir().unwrap();
    let run = run_demo_recipe(dir.path());
    let report = run.join("report.html");
    assert!(report.is_file());
    let screenshot = dir.path().join("screenshot.png");
    let profile = dir.path().join("profile");
    let status = Command::new(browser)
        .args(["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--hide-scrollbars"])
        .arg(format!("--user-data-dir={}", profile.display()))
        .arg(format!("--screenshot={}", screenshot.display()))
        .arg("--window-size=1100,7000")
        .arg(format!("file://{}", report.display()))
        .output()
        .unwrap();
    assert!(screenshot.is_file(), "chromium wrote no screenshot: {}", String::from_utf8_lossy(&status.stderr));
    let image = image::open(&screenshot).unwrap().to_rgb8();
    let count = |colour: [u8; 3]| image.pixels().filter(|pixel| pixel.0 == colour).count();
    // Series colours only appear inside the embedded plots: if they show, the images rendered.
    let blue = count([31, 119, 180]);
    let orange = count([255, 127, 14]);
    let white = count([255, 255, 255]);
    assert!(blue > 2000 && orange > 500, "plots visible in the screenshot: {blue} blue and {orange} orange pixels");
    // The top-losses gallery (cells on tlrun::report::plots::GALLERY) and the most-confused bars
    // (CONFUSED): colours no other plot uses.
    let gallery = count([232, 238, 250]);
    let confused = count([200, 30, 120]);
    assert!(gallery > 20_000, "top-losses gallery visible: {gallery} pixels of its cells");
    assert!(confused > 300, "most-confused bars visible: {confused} pixels");
    assert!(white < image.pixels().len(), "not blank");
}
