//! Any bytes through the parser, checker, DAG and renderers: nothing may panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use tlrun::check::{NoWorld, check_source};
use tlrun::render::{self, FileDiagnostics, HumanStyle};

fuzz_target!(|data: &[u8]| {
    let source = String::from_utf8_lossy(data);
    let (recipe, diagnostics) = check_source(&source, "fuzz", &NoWorld);
    let view = FileDiagnostics { path: "fuzz.tl", source: &source, diagnostics: &diagnostics };
    let _ = render::human(&view, HumanStyle::Plain);
    let json = render::json(std::slice::from_ref(&view));
    assert!(serde_json::from_str::<serde_json::Value>(&json).is_ok(), "the json format is always valid JSON");
    let github = render::github(std::slice::from_ref(&view));
    assert_eq!(github.lines().count(), diagnostics.len(), "one annotation line per diagnostic");
    if let Some(recipe) = recipe {
        let graph = tlrun::plan::build_graph(&recipe);
        let _ = (graph.to_text(), graph.to_dot(), graph.to_mermaid());
        let _ = tlrun::plan::render_stage_tables(&recipe);
    }
});
