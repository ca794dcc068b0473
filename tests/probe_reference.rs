//! LogME, the shrinkage H-score, PARC and the Fréchet distance against values their reference
//! implementations computed in numpy/scipy/scikit-learn on fixed matrices
//! (tests/fixtures/probe/make_reference.py wrote them).

use tlrun::probe::{FeatureStats, Features, LinearProbe, frechet_distance, hscore, logme, parc, stratified_split};

fn reference() -> serde_json::Value {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/probe/reference.json")).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn numbers(value: &serde_json::Value) -> Vec<f64> {
    value.as_array().unwrap().iter().map(|number| number.as_f64().unwrap()).collect()
}

fn case_features(case: &serde_json::Value) -> (Features, Vec<usize>, usize) {
    let rows = case["rows"].as_u64().unwrap() as usize;
    let width = case["width"].as_u64().unwrap() as usize;
    let labels = case["labels"].as_array().unwrap().iter().map(|label| label.as_u64().unwrap() as usize).collect();
    (Features::new(rows, width, numbers(&case["features"])), labels, case["classes"].as_u64().unwrap() as usize)
}

#[test]
fn logme_matches_the_authors_implementation() {
    for case in reference()["logme"].as_array().unwrap() {
        let (features, labels, classes) = case_features(case);
        let ours = logme(&features, &labels, classes).evidence;
        let theirs = case["logme"].as_f64().unwrap();
        assert!((ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0), "{}: {ours} against {theirs}", case["name"]);
    }
}

/// Four cases: taller and wider than the sample (where only the shrinkage keeps the covariance
/// invertible), well separated classes and pure noise.
#[test]
fn the_shrinkage_hscore_matches_scikit_learns_ledoit_wolf() {
    for case in reference()["logme"].as_array().unwrap() {
        let (features, labels, classes) = case_features(case);
        let (ours, theirs) = (hscore(&features, &labels, classes), case["hscore"].as_f64().unwrap());
        assert!((ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0), "{}: {ours} against {theirs}", case["name"]);
    }
}

/// The same cases; the wider one (50 features) goes through the 32 principal components.
#[test]
fn parc_matches_the_authors_implementation() {
    for case in reference()["logme"].as_array().unwrap() {
        let (features, labels, classes) = case_features(case);
        let (ours, theirs) = (parc(&features, &labels, classes), case["parc"].as_f64().unwrap());
        assert!((ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0), "{}: {ours} against {theirs}", case["name"]);
    }
    let ordered = |case: &str| reference()["logme"].as_array().unwrap().iter().find(|c| c["name"] == case).unwrap()["parc"].as_f64().unwrap();
    assert!(ordered("well_separated") > ordered("small") && ordered("small") > ordered("noise"), "separation orders PARC");
}

#[test]
fn frechet_distance_matches_scipy() {
    for case in reference()["frechet"].as_array().unwrap() {
        let width = case["width"].as_u64().unwrap() as usize;
        let a = numbers(&case["a"]);
        let b = numbers(&case["b"]);
        let stats = |values: Vec<f64>| FeatureStats::of(&Features::new(values.len() / width, width, values));
        let ours = frechet_distance(&stats(a), &stats(b)).unwrap();
        let theirs = case["frechet"].as_f64().unwrap();
        assert!((ours - theirs).abs() <= 1e-6 * theirs.abs().max(1.0), "{}: {ours} against {theirs}", case["name"]);
    }
}

#[test]
fn the_linear_probe_reads_separated_classes_and_not_noise() {
    let cases = reference();
    let accuracy = |name: &str| {
        let case = cases["logme"].as_array().unwrap().iter().find(|case| case["name"] == name).unwrap();
        let (features, labels, classes) = case_features(case);
        let (fit, held_out) = stratified_split(&labels, 4);
        let pick = |indices: &[usize]| indices.iter().map(|index| labels[*index]).collect::<Vec<_>>();
        LinearProbe::fit(&features.select(&fit), &pick(&fit), classes).accuracy(&features.select(&held_out), &pick(&held_out))
    };
    assert!(accuracy("well_separated") > 0.95, "{}", accuracy("well_separated"));
    assert!(accuracy("noise") < 0.6, "chance is 1/3: {}", accuracy("noise"));
}
