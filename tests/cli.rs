//! The real `tlrun` binary: exit codes and every output format.

use std::path::Path;
use std::process::{Command, Output};

const CLEAN: &str = r#"recipe "clean"
backbone resnet_small from none
data { train "data/train" batch 16 }
stage warmup { train head epochs 1 lr 2e-3 }
stage finetune { train all epochs 2 lr 1e-3 spread 10 resize 24 -> 32 }
"#;

const BROKEN: &str = r#"recipe "broken"
backbone resnet18 from none
data { train "data/train" }
cut after layr4
stage warmup { train head epochs 0 }
"#;

const WARNS: &str = r#"recipe "warns"
backbone resnet_small from file "weights.safetensors"
data { train "data/train" }
stage finetune { train all epochs 2 lr 1e-3 }
"#;

fn tlrun(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tlrun")).args(args).current_dir(dir).output().expect("tlrun runs")
}

fn workspace() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("clean.tl"), CLEAN).unwrap();
    std::fs::write(dir.path().join("broken.tl"), BROKEN).unwrap();
    std::fs::write(dir.path().join("warns.tl"), WARNS).unwrap();
    dir
}

fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[test]
fn lint_clean_recipe_exits_zero() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["lint", "clean.tl"]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert_eq!(stdout(&output).trim(), "1 recipe checked: 0 errors, 0 warnings");
}

#[test]
fn lint_reports_every_error_and_exits_one() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["lint", "broken.tl"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    assert!(text.contains("TL1002") && text.contains("did you mean `layer4`?"), "{text}");
    assert!(text.contains("TL2001"), "{text}");
    assert!(text.contains("2 errors"), "{text}");
    assert!(!text.contains('\u{1b}'), "no colour codes when stdout is not a terminal");
}

#[test]
fn lint_searches_folders_and_counts_warnings() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["lint", "."]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stdout(&output).contains("3 recipes checked: 2 errors, 2 warnings"), "{}", stdout(&output));
}

#[test]
fn warnings_fail_only_when_denied() {
    let dir = workspace();
    assert_eq!(tlrun(dir.path(), &["lint", "warns.tl"]).status.code(), Some(0));
    let denied = tlrun(dir.path(), &["lint", "warns.tl", "--deny", "warnings"]);
    assert_eq!(denied.status.code(), Some(1));
    assert!(stdout(&denied).contains("TL5003") && stdout(&denied).contains("TL5004"));
}

#[test]
fn json_output_is_machine_readable() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["lint", "broken.tl", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let findings: serde_json::Value = serde_json::from_slice(&output.stdout).expect("valid JSON");
    let findings = findings.as_array().unwrap();
    assert_eq!(findings.len(), 2);
    assert_eq!(findings[0]["code"], "TL1002");
    assert_eq!(findings[0]["severity"], "error");
    assert_eq!(findings[0]["location"]["line"], 4);
    assert_eq!(findings[0]["location"]["column"], 11);
    assert_eq!(findings[0]["file"], "broken.tl");
}

#[test]
fn github_output_annotates_lines() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["lint", "broken.tl", "--format", "github"]);
    assert_eq!(output.status.code(), Some(1));
    let text = stdout(&output);
    let first = text.lines().next().unwrap();
    assert!(first.starts_with("::error file=broken.tl,line=4,col=11,endLine=4,endColumn=16,title=TL1002 unknown-layer::"), "{first}");
    assert_eq!(text.lines().count(), 2);
}

#[test]
fn usage_and_io_errors_exit_two() {
    let dir = workspace();
    assert_eq!(tlrun(dir.path(), &["lint", "nowhere.tl"]).status.code(), Some(2));
    assert_eq!(tlrun(dir.path(), &["explain", "TL9999"]).status.code(), Some(2));
    assert_eq!(tlrun(dir.path(), &["lint", "--format", "xml", "clean.tl"]).status.code(), Some(2));
}

#[test]
fn explain_prints_the_doc_page() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["explain", "tl1002"]);
    assert_eq!(output.status.code(), Some(0));
    let page = std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/diagnostics/TL1002.md")).unwrap();
    assert_eq!(stdout(&output), page);
}

#[test]
fn graph_in_every_format() {
    let dir = workspace();
    let text = stdout(&tlrun(dir.path(), &["graph", "clean.tl"]));
    assert!(text.contains("stage finetune (2 epochs)") && text.contains("images at 24px"), "{text}");
    let dot = stdout(&tlrun(dir.path(), &["graph", "clean.tl", "--format", "dot"]));
    assert!(dot.starts_with("digraph recipe {") && dot.contains("->"), "{dot}");
    let mermaid = stdout(&tlrun(dir.path(), &["graph", "clean.tl", "--format", "mermaid"]));
    assert!(mermaid.starts_with("flowchart TD") && mermaid.contains("-->"), "{mermaid}");
    let broken = tlrun(dir.path(), &["graph", "broken.tl"]);
    assert_eq!(broken.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&broken.stderr).contains("TL1002"));
}

#[test]
fn plan_shows_rates_and_sizes() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["plan", "clean.tl"]);
    assert_eq!(output.status.code(), Some(0));
    let text = stdout(&output);
    // spread 10 over 5 groups: stem gets lr/10.
    assert!(text.contains("stem    train        0.1000    1.000e-4"), "{text}");
    assert!(text.contains("head    train        1.0000    1.000e-3"), "{text}");
    assert!(text.contains("sizes per epoch  1:24px  2:32px"), "{text}");
}

/// `from recipe` takes the statistics the upstream recipe trained with: its normalisation and its
/// last image size, so the traps are judged against them.
#[test]
fn from_recipe_uses_the_upstream_training_statistics() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("up.tl"),
        "recipe \"up\"\nbackbone resnet_small from none\ndata { train \"x\" normalize mean 0.4 0.4 0.4 std 0.2 0.2 0.2 }\nstage s { train all epochs 2 resize 32 -> 48 }\nexport \"up.safetensors\"\n",
    )
    .unwrap();
    std::fs::write(
        dir.path().join("down.tl"),
        "recipe \"down\"\nbackbone resnet_small from recipe \"up.tl\"\ndata { train \"x\" }\nstage warmup { train head epochs 1 }\nstage finetune { train all epochs 2 lr 1e-3 spread 10 resize 32 -> 48 }\n",
    )
    .unwrap();
    let output = tlrun(dir.path(), &["lint", "down.tl"]);
    let text = stdout(&output);
    // Trained up to 48px: fine-tuning at 32px is below the pretraining size.
    assert!(text.contains("TL5002") && text.contains("below the 48px"), "{text}");
    // The default `normalize backbone` now means up's 0.4/0.2: no stats warning.
    assert!(!text.contains("TL5001"), "{text}");
    let plan = stdout(&tlrun(dir.path(), &["plan", "down.tl"]));
    assert!(plan.contains("sizes per epoch  1:48px"), "the default size is the upstream's last size: {plan}");
}

/// One unreadable file (Latin-1, a device, a folder named like a recipe) is a TL4013 finding about
/// that file; every other file is still linted, in every format, and JSON stays valid.
#[test]
fn an_unreadable_file_is_a_finding_and_the_others_are_still_linted() {
    let dir = workspace();
    std::fs::write(dir.path().join("latin1.tl"), b"recipe \"caf\xe9\"\n").unwrap();
    std::fs::create_dir(dir.path().join("folder.tl")).unwrap();
    for format in ["human", "json", "github"] {
        let output = tlrun(dir.path(), &["lint", "--format", format, "."]);
        let text = stdout(&output);
        assert_eq!(output.status.code(), Some(1), "{format}: {text}");
        assert!(text.contains("TL4013") && text.contains("latin1.tl") && text.contains("not UTF-8"), "{format}: {text}");
        assert!(text.contains("TL1002"), "broken.tl is still linted ({format}): {text}");
        if format == "json" {
            let parsed: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
            assert!(parsed.as_array().is_some_and(|files| !files.is_empty()), "{text}");
        }
    }
    // `from recipe` on a device is refused at once, not read until memory runs out.
    std::fs::write(dir.path().join("device.tl"), "recipe \"d\"\nbackbone resnet_small from recipe \"/dev/zero\"\ndata { train \"data/train\" }\nstage s { train head }\n").unwrap();
    let output = tlrun(dir.path(), &["lint", "device.tl"]);
    assert!(stdout(&output).contains("not a regular file"), "{}", stdout(&output));
}

#[test]
fn a_byte_order_mark_is_accepted_and_a_symlink_loop_is_walked_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut text = "\u{FEFF}".to_string();
    text.push_str(CLEAN);
    std::fs::write(dir.path().join("bom.tl"), text).unwrap();
    #[cfg(unix)]
    std::os::unix::fs::symlink(dir.path(), dir.path().join("loop")).unwrap();
    let output = tlrun(dir.path(), &["lint", "."]);
    assert_eq!(output.status.code(), Some(0), "{}", stdout(&output));
    assert!(stdout(&output).contains("1 recipe checked"), "{}", stdout(&output));
}

#[test]
fn a_number_too_large_is_reported_once_and_never_quoted_back_wrong() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("huge.tl"), "backbone resnet_small from none\ndata { train \"x\" }\nstage s { train all epochs 99999999999999999999 }\nstage t { train all epochs 4294967295 }\n").unwrap();
    let output = tlrun(dir.path(), &["lint", "huge.tl"]);
    let text = stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{text}");
    assert!(!text.contains("9223372036854775807"), "no number the user never wrote: {text}");
    assert_eq!(text.matches("TL2007(").count(), 2, "one finding per number: {text}");
    assert!(text.contains("at most 100000 epochs"), "the limit is named: {text}");
}

/// Look-alike and invisible characters are named by code point with the ASCII meant, a name cut
/// short by one is not reported again as unknown, and timm's spellings are understood.
#[test]
fn lookalike_characters_are_named_and_timm_spellings_understood() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("look.tl"), "recipe \u{201C}x\u{201D}\nbackbone resn\u{0435}t18 from none\ndata { train \"x\" }\nstage s { train\u{200B} all }\n").unwrap();
    let text = stdout(&tlrun(dir.path(), &["lint", "look.tl"]));
    assert!(text.contains("U+201C LEFT DOUBLE QUOTATION MARK) looks like `\"`"), "{text}");
    assert!(text.contains("U+0435 CYRILLIC SMALL LETTER IE) looks like `e`"), "{text}");
    assert!(text.contains("U+200B ZERO WIDTH SPACE"), "{text}");
    assert!(!text.contains("unknown architecture `resn`"), "no follow-on error: {text}");
    std::fs::write(dir.path().join("timm.tl"), "backbone resnet-18 from none\ndata { train \"x\" }\nstage s { train all }\n").unwrap();
    let text = stdout(&tlrun(dir.path(), &["lint", "timm.tl"]));
    assert!(text.contains("did you mean `resnet18`?"), "{text}");
}

/// Without a zoo folder a `from zoo` entry cannot be checked: lint says so on stderr (stdout
/// stays valid JSON) and exits 0; `--strict` makes it TL1004.
#[test]
fn a_missing_zoo_folder_is_noted_and_an_error_under_strict() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = "recipe \"z\"\nbackbone resnet18 from zoo \"typo\"\ndata { train \"data\" }\nstage s { train head epochs 1 lr 1e-3 }\n";
    std::fs::write(dir.path().join("z.tl"), recipe).unwrap();
    let lint = tlrun(dir.path(), &["lint", "z.tl", "--format", "json"]);
    assert_eq!(lint.status.code(), Some(0));
    let findings: serde_json::Value = serde_json::from_slice(&lint.stdout).unwrap();
    assert!(findings.as_array().unwrap().iter().all(|finding| finding["code"] != "TL1004"));
    let stderr = String::from_utf8_lossy(&lint.stderr);
    assert!(stderr.contains("no zoo folder") && stderr.contains("`typo` in z.tl") && stderr.contains("--strict"), "{stderr}");
    let strict = tlrun(dir.path(), &["lint", "z.tl", "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(stdout(&strict).contains("TL1004") && stdout(&strict).contains("no zoo to find `typo` in"), "{}", stdout(&strict));
}

/// `tlrun bench --network NAME@PX` times that network alone; a name the zoo cannot build, or a
/// malformed value, is refused before anything runs.
#[test]
fn bench_times_one_network_and_refuses_unknown_ones() {
    let dir = workspace();
    let output = tlrun(dir.path(), &["bench", "--network", "resnet_small@16", "--steps", "1"]);
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    let rows: Vec<String> = stdout(&output).lines().filter(|line| line.starts_with("resnet")).map(str::to_string).collect();
    assert_eq!(rows.len(), 1, "one network: {rows:?}");
    assert!(rows[0].starts_with("resnet_small") && rows[0].split_whitespace().nth(1) == Some("16"), "{rows:?}");
    assert!(!stdout(&output).contains("lint"), "no lint figures with --network");
    // `tlrun predict`'s row beside it: the same network and size from PNG files.
    let printed = stdout(&output);
    let predict: Vec<&str> = printed.lines().filter(|line| line.starts_with("predict resnet_small@16: ")).collect();
    assert_eq!(predict.len(), 1, "{printed}");
    assert!(predict[0].contains("img/s from PNG files, decoding included"), "{predict:?}");
    let refusals = [("resnet99@28", "unknown architecture `resnet99`"), ("resnet18", "expected NAME@PX"), ("resnet18@big", "`big` is not an image size")];
    for (bad, reason) in refusals {
        let output = tlrun(dir.path(), &["bench", "--network", bad]);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{bad}: clap's usage error");
        assert!(stderr.contains(reason), "{bad}: {stderr}");
    }
}

/// `export` once per format and `predict … into` a .csv or .jsonl: lint says so, with spans.
#[test]
fn lint_checks_exports_and_predict_steps() {
    let dir = workspace();
    let recipe = "recipe \"e\"\nbackbone resnet_small from none\ndata { train synthetic \"shapes-target\" 28 per class valid split 0.25 batch 4 }\n\
                  stage s { train all epochs 1 lr 1e-3 }\nexport \"a.safetensors\"\nexport \"a.onnx\"\nexport \"b.onnx\"\n\
                  predict \"new\" into \"p.csv\"\npredict \"other\" into \"p.csv\"\npredict \"new\" into \"p.txt\"\n";
    std::fs::write(dir.path().join("e.tl"), recipe).unwrap();
    let output = tlrun(dir.path(), &["lint", "e.tl", "--format", "json"]);
    assert_eq!(output.status.code(), Some(1));
    let diagnostics: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let codes: Vec<&str> = diagnostics.iter().map(|d| d["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["TL1006", "TL1006", "TL2007"], "{}", stdout(&output));
    let messages: Vec<&str> = diagnostics.iter().map(|d| d["message"].as_str().unwrap()).collect();
    assert!(messages[0].contains("`export` is written twice") && messages[1].contains("two `predict` steps write `p.csv`"), "{messages:?}");
    assert!(messages[2].contains("p.txt"), "{messages:?}");
    // One export of each format and distinct outputs pass; --strict wants the folder to predict.
    let fixed = recipe.replace("export \"b.onnx\"\n", "").replace("predict \"other\" into \"p.csv\"\n", "").replace("p.txt", "p.jsonl");
    std::fs::write(dir.path().join("e.tl"), &fixed).unwrap();
    assert_eq!(tlrun(dir.path(), &["lint", "e.tl"]).status.code(), Some(0), "{}", stdout(&tlrun(dir.path(), &["lint", "e.tl"])));
    let strict = tlrun(dir.path(), &["lint", "e.tl", "--strict"]);
    assert!(stdout(&strict).contains("TL4001") && stdout(&strict).contains("folder `new` to predict does not exist"), "{}", stdout(&strict));
    std::fs::create_dir_all(dir.path().join("new")).unwrap();
    assert_eq!(tlrun(dir.path(), &["lint", "e.tl", "--strict"]).status.code(), Some(0));
}

/// Numbers of 2^32 and more are over the limit, not read as zero (issue 24): `epochs` and
/// `checkpoint every` get the limit's TL2007, never "at least one".
#[test]
fn numbers_past_32_bits_get_the_limit_error() {
    let dir = workspace();
    let recipe = "recipe \"big\"\nbackbone resnet_small from none\ndata { train \"data\" }\nstage s { train all epochs 4294967296 lr 1e-3 }\ncheckpoint every 4294967296 steps\n";
    std::fs::write(dir.path().join("big.tl"), recipe).unwrap();
    let output = tlrun(dir.path(), &["lint", "big.tl", "--format", "json"]);
    let diagnostics: Vec<serde_json::Value> = serde_json::from_str(&stdout(&output)).unwrap();
    let messages: Vec<(&str, &str)> = diagnostics.iter().map(|d| (d["code"].as_str().unwrap(), d["message"].as_str().unwrap())).collect();
    assert_eq!(messages, [
        ("TL2007", "a stage trains for at most 100000 epochs, not 4294967296"),
        ("TL2007", "checkpoints come every 4294967295 steps at most, not 4294967296"),
    ]);
}

/// A `from zoo` entry that a linted sibling publishes is checked against what that sibling will
/// write, whether the zoo folder lacks the entry or is absent; the demo lints on a fresh checkout.
#[test]
fn a_zoo_entry_a_sibling_publishes_satisfies_lint() {
    let dir = tempfile::tempdir().unwrap();
    let pipelines = Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines");
    for name in ["pretrain.tl", "transfer.tl", "scratch.tl"] {
        std::fs::copy(pipelines.join(name), dir.path().join(name)).unwrap();
    }
    // A zoo that exists and holds another entry only.
    std::fs::create_dir_all(dir.path().join("zoo/other")).unwrap();
    for zoo in ["zoo", "absent-zoo"] {
        let lint = tlrun(dir.path(), &["lint", ".", "--zoo", zoo]);
        assert_eq!(lint.status.code(), Some(0), "zoo {zoo}: {}", stdout(&lint));
        assert!(!String::from_utf8_lossy(&lint.stderr).contains("shapes-small"), "checked, so not noted as unchecked");
    }
    // Alone, transfer.tl has no publisher in the run: the missing entry is an error.
    let alone = tlrun(dir.path(), &["lint", "transfer.tl", "--zoo", "zoo"]);
    assert_eq!(alone.status.code(), Some(1));
    assert!(stdout(&alone).contains("TL1004"), "{}", stdout(&alone));
    // The publisher's card is what the consumer is checked against: a resnet18 consumer is TL1005.
    let transfer = std::fs::read_to_string(dir.path().join("transfer.tl")).unwrap();
    std::fs::write(dir.path().join("transfer.tl"), transfer.replace("backbone resnet_small", "backbone resnet18")).unwrap();
    let mismatch = tlrun(dir.path(), &["lint", ".", "--zoo", "zoo"]);
    assert_eq!(mismatch.status.code(), Some(1));
    assert!(stdout(&mismatch).contains("resnet_small"), "{}", stdout(&mismatch));
}

/// `tlrun plan big.tl | head -1`: the reader goes away after one line; tlrun must end quietly
/// (SIGPIPE's default), not panic in `println!` with a backtrace on stderr.
#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    use std::io::Read;
    let dir = workspace();
    let stages: String = (0..3000).map(|index| format!("stage s{index} {{ train all epochs 1 lr 1e-3 }}\n")).collect();
    std::fs::write(dir.path().join("big.tl"), format!("recipe \"big\"\nbackbone resnet18 from none\ndata {{ train \"data\" batch 8 }}\n{stages}")).unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_tlrun"))
        .args(["plan", "big.tl"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("tlrun starts");
    let mut first = [0u8; 16];
    child.stdout.take().unwrap().read_exact(&mut first).expect("some output before the pipe closes");
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
}

/// `tlrun plan` says what augmentation does to a training image, in order, with fastai's defaults
/// filled in for the options written alone.
#[test]
fn plan_shows_the_augmentation() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = "recipe \"aug\"\nbackbone resnet_small from none\ndata { train synthetic \"shapes-target\" 200 per class batch 32 augment flip rotate zoom 1.3 lighting }\nstage all { train all epochs 1 }\n";
    std::fs::write(dir.path().join("aug.tl"), recipe).unwrap();
    let output = tlrun(dir.path(), &["plan", "aug.tl"]);
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(
        text.contains("augment (training images only): flip (p 0.5) → rotate ±10°, zoom 1–1.3x (one bilinear resample, reflected edges; each p 0.75) → lighting 0.2"),
        "{text}"
    );
}

