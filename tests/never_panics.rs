//! The parser and checker never panic, whatever the input.

use proptest::prelude::*;
use tlrun::check::{NoWorld, check_source};

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
    let (recipe, _) = check_source(source, "fuzz", &NoWorld);
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
}
