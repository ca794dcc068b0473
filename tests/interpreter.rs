//! The runtime is an interpreter of the graph `tlrun graph` draws: a run executes exactly that
//! graph's nodes, with the same ids, in an order that respects every edge.

mod common;

use common::*;

#[test]
fn a_run_executes_exactly_the_graph_it_draws_in_topological_order() {
    let dir = tempfile::tempdir().unwrap();
    write_dataset(&dir.path().join("data/train"), 4, 1);
    let recipe = "recipe \"walk\"\nseed 3\nbackbone resnet_small from none\ndata { train \"data/train\" valid split 0.25 batch 8 size 16 }\n\
                  stage warmup { train head epochs 1 lr 3e-3 }\nstage grow { train all epochs 2 lr 1e-3 spread 10 resize 16 -> 20 }\n\
                  export \"out/walk.safetensors\"\npublish \"walk\"\n";
    std::fs::write(dir.path().join("walk.tl"), recipe).unwrap();
    let graph = tlrun(dir.path(), &["graph", "walk.tl", "--format", "json"]);
    assert_eq!(graph.status.code(), Some(0), "{}", String::from_utf8_lossy(&graph.stderr));
    let graph: serde_json::Value = serde_json::from_slice(&graph.stdout).unwrap();
    let drawn: Vec<u64> = graph["nodes"].as_array().unwrap().iter().map(|node| node["id"].as_u64().unwrap()).collect();
    let kinds: Vec<&str> = graph["nodes"].as_array().unwrap().iter().map(|node| node["step"]["step"].as_str().unwrap()).collect();
    for kind in ["load_data", "build_backbone", "cut", "attach_head", "resize", "stage", "evaluate", "export", "publish"] {
        assert!(kinds.contains(&kind), "the graph has a {kind} step: {kinds:?}");
    }

    let run = tlrun(dir.path(), &["walk.tl", "--out", "run"]);
    assert_eq!(run.status.code(), Some(0), "{}", String::from_utf8_lossy(&run.stderr));
    let executed: Vec<u64> = std::fs::read_to_string(dir.path().join("run/steps.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str::<serde_json::Value>(line).unwrap()["node"].as_u64().unwrap())
        .collect();
    let mut sorted_drawn = drawn.clone();
    sorted_drawn.sort();
    let mut sorted_executed = executed.clone();
    sorted_executed.sort();
    assert_eq!(sorted_executed, sorted_drawn, "every drawn node ran once, and nothing else");
    let position = |node: u64| executed.iter().position(|n| *n == node).unwrap();
    for edge in graph["edges"].as_array().unwrap() {
        let (from, to) = (edge[0].as_u64().unwrap(), edge[1].as_u64().unwrap());
        assert!(position(from) < position(to), "edge {from} → {to} respected in {executed:?}");
    }
    assert_eq!(executed, drawn, "the run's order is the order graph prints");
    assert!(dir.path().join("out/walk.safetensors").is_file() && dir.path().join("zoo/walk/card.toml").is_file());
}
