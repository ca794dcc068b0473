//! The parser, the checker and all three renderers never panic, whatever the input: arbitrary
//! text and bytes, mutated recipes, huge numbers, very long names and deep nesting.

use proptest::prelude::*;
use tlrun::check::{NoWorld, check_source};
use tlrun::render::{self, FileDiagnostics, HumanStyle};

const VALID: &str = r#"recipe "demo"
seed 7
backbone resnet18 from zoo "resnet18-imagenet" { mean 0.485 0.456 0.406 std 0.229 0.224 0.225 size 224 }
data { train "data/train" valid split 0.2 seed 3 batch 32 augment flip crop 4 corrupt skip }
cut after layer4
head { pool concat dropout 0.25 linear 256 relu batchnorm linear classes }
groups { stem: conv1 bn1 relu maxpool  body: layer1 layer2 layer3 layer4  new: head }
stage warmup { train new epochs 1 lr 2e-3 schedule onecycle }
stage finetune { train all epochs 6 lr 1e-3 spread 100 optimizer sgd momentum 0.9 wd 1e-4 resize 224 -> 256 at epochs 1, 4 batchnorm train }
export "out/demo.safetensors"
"#;

fn check_everything(source: &str) {
    let (recipe, diagnostics) = check_source(source, "fuzz", &NoWorld);
    let view = FileDiagnostics { path: "fuzz.tl", source, diagnostics: &diagnostics };
    let _ = render::human(&view, HumanStyle::Plain);
    let _ = render::human(&view, HumanStyle::Colour);
    let json = render::json(std::slice::from_ref(&view));
    let parsed: serde_json::Value = serde_json::from_str(&json).expect("the json format is always valid JSON");
    assert_eq!(parsed.as_array().map(Vec::len), Some(diagnostics.len()));
    let github = render::github(std::slice::from_ref(&view));
    assert_eq!(github.lines().count(), diagnostics.len(), "one annotation line per diagnostic:\n{github}");
    if let Some(recipe) = recipe {
        let graph = tlrun::plan::build_graph(&recipe);
        let _ = graph.to_text();
        let _ = tlrun::plan::render_stage_tables(&recipe);
    }
}

#[test]
fn the_valid_recipe_is_clean() {
    let (recipe, diagnostics) = check_source(VALID, "demo", &NoWorld);
    assert!(diagnostics.is_empty(), "{diagnostics:#?}");
    assert_eq!(recipe.unwrap().stages[1].sizes, vec![224, 224, 224, 256, 256, 256]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_text_never_panics(source in "\\PC*") {
        check_everything(&source);
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        check_everything(&String::from_utf8_lossy(&bytes));
    }

    #[test]
    fn mutated_recipes_never_panic(cut in 0..VALID.len(), length in 0usize..40, insert in "[ -~\\n]{0,12}") {
        let mut source = VALID.to_string();
        let start = (0..=cut).rev().find(|i| source.is_char_boundary(*i)).unwrap_or(0);
        let end = (start + length).min(source.len());
        let end = (end..=source.len()).find(|i| source.is_char_boundary(*i)).unwrap_or(source.len());
        source.replace_range(start..end, &insert);
        check_everything(&source);
    }

    #[test]
    fn huge_numbers_never_panic(digits in "[0-9]{1,40}", exponent in "(e[+-]?[0-9]{1,6})?", slot in 0usize..6) {
        let number = format!("{digits}{exponent}");
        let places = ["seed N", "epochs N", "lr N", "batch N", "resize N -> N", "spread N"];
        let source = VALID
            .replace("seed 7", &places[0].replace('N', &number))
            .replace("epochs 6", &if slot == 1 { places[1].replace('N', &number) } else { "epochs 6".into() })
            .replace("lr 1e-3", &if slot == 2 { places[2].replace('N', &number) } else { "lr 1e-3".into() })
            .replace("batch 32", &if slot == 3 { places[3].replace('N', &number) } else { "batch 32".into() })
            .replace("resize 224 -> 256", &if slot == 4 { places[4].replace('N', &number) } else { "resize 224 -> 256".into() })
            .replace("spread 100", &if slot == 5 { places[5].replace('N', &number) } else { "spread 100".into() });
        check_everything(&source);
    }

    #[test]
    fn long_names_never_panic(length in 1usize..120_000, letter in "[a-zA-Zé_]", slot in 0usize..3) {
        let name = letter.repeat(length);
        let source = match slot {
            0 => VALID.replace("stage warmup", &format!("stage {name}")),
            1 => VALID.replace("new: head", &format!("{name}: head")),
            _ => VALID.replace("layer4\nhead", &format!("{name}\nhead")),
        };
        check_everything(&source);
    }

    #[test]
    fn deep_nesting_never_panics(depth in 1usize..20_000, opener in "[{(\\[\"]") {
        let source = format!("{VALID}stage deep {}\n", opener.repeat(depth));
        check_everything(&source);
    }
}
