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

/// A checkpoint maps onto the graph's stage nodes: the stages it closed are completed nodes, the
/// next one continues from inside it when the checkpoint was written there.
#[test]
fn a_resume_point_is_a_position_in_the_graph() {
    use tlrun::runtime::resume_point::ResumePoint;
    use tlrun::runtime::trainer::Position;
    let recipe = recipe(
        "recipe \"r\"\nbackbone resnet_small from none\ndata { train \"unused\" batch 8 size 16 }\n\
         stage head { train head epochs 2 lr 1e-3 }\nstage all { train all epochs 3 lr 1e-4 }\n",
    );
    let graph = tlrun::plan::build_graph(&recipe);
    let stage_node = |wanted: usize| {
        graph.graph.node_indices().find(|node| matches!(graph.graph[*node], tlrun::plan::Step::Stage { index, .. } if index == wanted)).unwrap()
    };
    let at = |stage_index: usize, epoch: u32| {
        let position = Position { stage_index, epoch, next_batch: 0, step_in_stage: 0, global_step: 0, global_epoch: 1, rng_state: 0, loss_sum: 0.0, images_seen: 0, best: Default::default() };
        ResumePoint::at("checkpoint".into(), position, &graph)
    };
    let inside_first = at(0, 2).unwrap();
    assert_eq!((inside_first.completed.clone(), inside_first.next_stage, inside_first.within), (vec![], Some(stage_node(0)), true));
    let first_closed = at(0, 3).unwrap();
    assert_eq!((first_closed.completed.clone(), first_closed.next_stage, first_closed.within), (vec![stage_node(0)], Some(stage_node(1)), false));
    let inside_second = at(1, 1).unwrap();
    assert_eq!((inside_second.completed.clone(), inside_second.next_stage, inside_second.within), (vec![stage_node(0)], Some(stage_node(1)), true));
    let all_closed = at(1, 4).unwrap();
    assert_eq!((all_closed.completed.clone(), all_closed.next_stage), (vec![stage_node(0), stage_node(1)], None));
    let foreign = at(5, 1).unwrap_err();
    assert!(foreign.message.contains("stage 6 of a recipe with 2 stage(s)"), "{}", foreign.message);
}

/// A resume is a rewrite of the program, not branches in the handlers: the closed stage has no
/// instructions, the pretrained load gives way to the run's own weights and the checkpoint, and
/// the stage the checkpoint stopped inside continues from it. A fresh program saves its initial
/// weights instead and loads the pretrained file.
#[test]
fn a_resumed_run_is_its_program_rewritten() {
    use tlrun::runtime::program::{Instruction, compile};
    use tlrun::runtime::resume_point::{ResumePoint, Start};
    use tlrun::runtime::trainer::Position;
    let recipe = recipe(
        "recipe \"r\"\nbackbone resnet_small from file \"w.safetensors\"\ndata { train \"unused\" batch 8 size 16 }\n\
         stage head { train head epochs 2 lr 1e-3 }\nstage all { train all epochs 3 lr 1e-4 }\nexport \"out/r.safetensors\"\n",
    );
    let graph = tlrun::plan::build_graph(&recipe);
    let base = std::path::Path::new("recipes");
    let weights = base.join("w.safetensors");
    let all = |program: &[tlrun::runtime::program::Line]| program.iter().flat_map(|line| line.instructions.clone()).collect::<Vec<_>>();

    let fresh = compile(&graph, &recipe, base, Some(&weights), &Start::Fresh);
    let fresh_instructions = all(&fresh);
    assert!(fresh_instructions.contains(&Instruction::LoadWeights { file: Some(weights.clone()) }));
    assert!(fresh_instructions.contains(&Instruction::SaveInitialWeights));
    let stage = |index: usize| Box::new(recipe.stages[index].clone());
    assert!(fresh_instructions.contains(&Instruction::Stage { index: 0, stage: stage(0), continue_inside: false }), "a stage carries its resolved operands");
    assert!(fresh_instructions.contains(&Instruction::Export { file: base.join("out/r.safetensors") }), "paths resolved against the recipe's folder");
    assert!(fresh.iter().all(|line| line.record && !line.instructions.is_empty()));

    let position = Position { stage_index: 1, epoch: 2, next_batch: 0, step_in_stage: 0, global_step: 0, global_epoch: 3, rng_state: 0, loss_sum: 0.0, images_seen: 0, best: Default::default() };
    let point = ResumePoint::at("checkpoint".into(), position, &graph).unwrap();
    let resumed = compile(&graph, &recipe, base, Some(&weights), &Start::Resume(point.clone()));
    let resumed_instructions = all(&resumed);
    assert!(resumed_instructions.contains(&Instruction::LoadWeights { file: None }), "the run's own initial weights, not the file");
    assert!(!resumed_instructions.contains(&Instruction::SaveInitialWeights));
    let attach = resumed_instructions.iter().position(|instruction| *instruction == Instruction::AttachHead).unwrap();
    assert_eq!(resumed_instructions[attach + 1], Instruction::RestoreRun { point });
    assert!(!resumed_instructions.iter().any(|instruction| matches!(instruction, Instruction::Stage { index: 0, .. })), "the closed stage is skipped");
    assert!(resumed_instructions.contains(&Instruction::Stage { index: 1, stage: stage(1), continue_inside: true }));
    let skipped: Vec<&str> = resumed.iter().filter(|line| !line.record).map(|line| line.label.as_str()).collect();
    assert_eq!(skipped.len(), 2, "the weights load and the closed stage are not recorded again: {skipped:?}");
}

/// lr-find and the probe start from the network a node sees by running the nodes it depends on:
/// the program's prefix, without what only records or measures a run.
#[test]
fn a_tool_runs_the_program_up_to_its_node() {
    use tlrun::runtime::program::{Instruction, compile, up_to, with_cut};
    use tlrun::runtime::resume_point::Start;
    let recipe = recipe(
        "recipe \"r\"\nbackbone resnet_small from file \"w.safetensors\"\ndata { train \"unused\" batch 8 size 16 }\n\
         stage head { train head epochs 2 lr 1e-3 }\nstage all { train all epochs 3 lr 1e-4 resize 16 -> 20 }\nexport \"out/r.safetensors\"\n",
    );
    let graph = tlrun::plan::build_graph(&recipe);
    let base = std::path::Path::new("recipes");
    let weights = base.join("w.safetensors");
    let program = compile(&graph, &recipe, base, Some(&weights), &Start::Fresh);
    let kinds = |lines: &[tlrun::runtime::program::Line]| {
        lines.iter().flat_map(|line| line.instructions.iter()).map(|instruction| format!("{instruction:?}").split([' ', '{']).next().unwrap().to_string()).collect::<Vec<_>>()
    };

    // lr-find on the second stage: everything the stage depends on, the first stage included.
    let before_second = up_to(&program, &graph, graph.stage_node(1).unwrap(), false);
    assert_eq!(kinds(&before_second), ["LoadData", "BuildBackbone", "Cut", "LoadWeights", "AttachHead", "Resize", "Stage", "Resize"], "{before_second:?}");
    assert!(before_second.iter().all(|line| !line.record), "a preparation records no step");
    assert!(!kinds(&before_second).iter().any(|kind| kind == "SaveInitialWeights" || kind == "Export"), "nothing that writes");

    // The probe: through the weights load, with the cut moved deeper; no data, no head.
    let load = graph.first(|step| matches!(step, tlrun::plan::Step::LoadWeights { .. })).unwrap();
    let through_load = with_cut(up_to(&program, &graph, load, true), 5);
    assert_eq!(kinds(&through_load), ["BuildBackbone", "Cut", "LoadWeights"]);
    assert!(through_load.iter().flat_map(|line| &line.instructions).any(|instruction| *instruction == Instruction::Cut { kept: 5 }));
}
