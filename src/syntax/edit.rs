//! Edits of recipe text that tools make for the user (`lr-find --write`, `probe --write`): the smallest change to
//! the source, so comments and layout survive, and the result is checked like any recipe.

use super::ast::{Ast, DataKind, ItemKind, StageDecl, StageKind, SweepKind};

/// A learning rate written the way recipes write them: two significant digits, `3.0e-3`.
pub fn format_rate(rate: f64) -> String {
    format!("{rate:.1e}")
}

/// `source` with stage `stage`'s `lr` set to `rate`: the rate of its `lr` statement replaced, or
/// `lr …` added after the stage's `{` when it has none. `Err` says why no edit was made.
pub fn set_stage_lr(source: &str, stage: &str, rate: f64) -> Result<String, String> {
    let stage = crate::span::Spanned::new(stage.to_string(), crate::span::Span::default());
    set_swept(source, &SweepKind::Lr(stage), &format_rate(rate))
}

/// `source` with its cut set to `cut after LAYER`: the `cut` statement replaced, or one added on
/// the line after `backbone` when there is none (`tlrun probe --write`).
pub fn set_cut(source: &str, layer: &str) -> Result<String, String> {
    let ast = parsed(source)?;
    let written = format!("cut after {layer}");
    let existing = ast.items.iter().find(|item| matches!(item.kind, ItemKind::Cut(_))).map(|item| item.span);
    let (at, end, text) = match existing {
        Some(span) => (span.start, span.end, written),
        None => {
            // After the whole statement: its `{ mean … }` block may follow the weights' source.
            let backbone_end = ast
                .items
                .iter()
                .find_map(|item| match &item.kind {
                    ItemKind::Backbone(backbone) => {
                        let words_end = backbone.weights.as_ref().map_or(backbone.architecture.span.end, |weights| weights.span.end);
                        Some(block_end(source, words_end))
                    }
                    _ => None,
                })
                .ok_or_else(|| "the recipe has no `backbone`".to_string())?;
            let line_end = source[backbone_end..].find('\n').map_or(source.len(), |offset| backbone_end + offset);
            (line_end, line_end, format!("\n{written}"))
        }
    };
    Ok(splice(source, at, end, &text))
}

/// A recipe that probes zoo entry `entry` (of `architecture`) on this recipe's data (`tlrun probe
/// --backbones`): the recipe's `recipe`, `seed` and `data` statements as written, except that the
/// data are normalised with the entry's own statistics (as a user switching backbones must), then
/// the entry as the backbone, cut where its card says by default, and one stage for the head.
pub fn backbone_candidate(source: &str, architecture: &str, entry: &str) -> Result<String, String> {
    let ast = parsed(source)?;
    let mut out = String::new();
    let mut has_data = false;
    for item in &ast.items {
        let text = &source[item.span.start..item.span.end];
        match &item.kind {
            ItemKind::Recipe(_) | ItemKind::Seed(_) => out.push_str(text),
            ItemKind::Data(statements) => {
                has_data = true;
                let normalize = statements.iter().find(|statement| matches!(statement.kind, DataKind::Normalize(_)));
                let block = match normalize {
                    Some(statement) => splice(text, statement.span.start - item.span.start, statement.span.end - item.span.start, "normalize backbone"),
                    None => {
                        let close = text.rfind('}').ok_or_else(|| "the `data` block has no closing brace".to_string())?;
                        // On a line of its own before the brace.
                        let before = text[..close].trim_end_matches([' ', '\t']).len();
                        let line = if text[..before].ends_with('\n') { "  normalize backbone\n" } else { "\n  normalize backbone\n" };
                        splice(text, before, close, line)
                    }
                };
                out.push_str(&block);
            }
            _ => continue,
        }
        out.push('\n');
    }
    if !has_data {
        return Err("the recipe has no `data` block to probe on".to_string());
    }
    out.push_str(&format!("backbone {architecture} from zoo \"{entry}\"\nstage probe {{ train head  epochs 1 }}\n"));
    Ok(out)
}

/// Where a statement that ends at `end` really ends: after the `{ … }` block that follows it, if
/// one does (comments and strings inside it skipped), else at `end`.
fn block_end(source: &str, end: usize) -> usize {
    let rest = &source[end..];
    let Some(open) = rest.find(|c: char| !c.is_whitespace()).filter(|&at| rest[at..].starts_with('{')) else { return end };
    let (mut comment, mut string) = (false, false);
    for (offset, c) in rest[open..].char_indices() {
        match c {
            '\n' => comment = false,
            _ if comment => {}
            '"' => string = !string,
            _ if string => {}
            '#' => comment = true,
            '}' => return end + open + offset + 1,
            _ => {}
        }
    }
    end
}

/// `source` with one swept value written in: the edit a sweep variant makes (`seed 3`, stage
/// `finetune`'s `lr 3e-3`, …), the value as the sweep wrote it.
pub fn set_swept(source: &str, kind: &SweepKind, value: &str) -> Result<String, String> {
    // `set_cut` parses the text itself: no tree is built for it here.
    let ast = match kind {
        SweepKind::Cut => return set_cut(source, value),
        _ => parsed(source)?,
    };
    match kind {
        SweepKind::Cut => set_cut(source, value),
        SweepKind::Seed => {
            let existing = ast.items.iter().find_map(|item| match &item.kind {
                ItemKind::Seed(seed) => Some(seed.span),
                _ => None,
            });
            Ok(match existing {
                Some(span) => splice(source, span.start, span.end, value),
                None => format!("seed {value}\n{source}"),
            })
        }
        SweepKind::Batch => {
            let (item, statements) = ast
                .items
                .iter()
                .find_map(|item| match &item.kind {
                    ItemKind::Data(statements) => Some((item, statements)),
                    _ => None,
                })
                .ok_or_else(|| "the recipe has no `data` block".to_string())?;
            let existing = statements.iter().find_map(|statement| match &statement.kind {
                DataKind::Batch(batch) => Some(batch.span),
                _ => None,
            });
            Ok(match existing {
                Some(span) => splice(source, span.start, span.end, value),
                None => {
                    let brace = source[item.span.start..item.span.end].find('{').map(|offset| item.span.start + offset + 1).ok_or("`data` has no `{`")?;
                    splice(source, brace, brace, &format!(" batch {value} "))
                }
            })
        }
        SweepKind::Zoo => {
            let existing = ast.items.iter().find_map(|item| match &item.kind {
                ItemKind::Backbone(backbone) => match backbone.weights.as_ref().map(|weights| &weights.value) {
                    Some(super::ast::WeightsSource::Zoo(entry)) => Some(entry.span),
                    _ => None,
                },
                _ => None,
            });
            let span = existing.ok_or("the backbone does not start `from zoo \"…\"`: write one entry there to sweep over others")?;
            Ok(splice(source, span.start, span.end, &format!("\"{value}\"")))
        }
        SweepKind::Spread(stage) => {
            let declaration = stage_declaration(&ast, &stage.value)?;
            let lr = declaration.statements.iter().find_map(|statement| match &statement.kind {
                StageKind::Lr { rate, spread, .. } => Some((rate.span, spread.as_ref().map(|spread| spread.span))),
                _ => None,
            });
            match lr {
                Some((_, Some(spread))) => Ok(splice(source, spread.start, spread.end, value)),
                Some((rate, None)) => Ok(splice(source, rate.end, rate.end, &format!(" spread {value}"))),
                None => Err(format!("stage `{}` has no `lr` to spread: write `lr RATE` in it first", stage.value)),
            }
        }
        SweepKind::Lr(stage) | SweepKind::Epochs(stage) => {
            let declaration = stage_declaration(&ast, &stage.value)?;
            let (keyword, existing) = match kind {
                SweepKind::Lr(_) => ("lr", declaration.statements.iter().find_map(|statement| match &statement.kind {
                    StageKind::Lr { rate, .. } => Some(rate.span),
                    _ => None,
                })),
                _ => ("epochs", declaration.statements.iter().find_map(|statement| match &statement.kind {
                    StageKind::Epochs(epochs) => Some(epochs.span),
                    _ => None,
                })),
            };
            Ok(match existing {
                Some(span) => splice(source, span.start, span.end, value),
                None => {
                    let brace = source[declaration.name.span.end..]
                        .find('{')
                        .map(|offset| declaration.name.span.end + offset + 1)
                        .ok_or_else(|| format!("stage `{}` has no `{{`", stage.value))?;
                    splice(source, brace, brace, &format!(" {keyword} {value} "))
                }
            })
        }
    }
}

/// The syntax tree of a recipe that parses without errors: tools edit only such text.
fn parsed(source: &str) -> Result<Ast, String> {
    let (ast, diagnostics) = super::parse(source);
    if !diagnostics.is_empty() {
        return Err("the recipe has syntax errors; fix them first (`tlrun lint`)".to_string());
    }
    Ok(ast)
}

/// The declaration of stage `name`.
fn stage_declaration<'a>(ast: &'a Ast, name: &str) -> Result<&'a StageDecl, String> {
    ast.items
        .iter()
        .find_map(|item| match &item.kind {
            ItemKind::Stage(declaration) if declaration.name.value == name => Some(declaration),
            _ => None,
        })
        .ok_or_else(|| format!("the recipe has no stage `{name}`"))
}

/// `source` without bytes `at..end` (a variant drops its recipe's `sweep` block).
pub fn remove(source: &str, at: usize, end: usize) -> String {
    splice(source, at, end, "")
}

/// `source` with bytes `at..end` replaced by `text`.
fn splice(source: &str, at: usize, end: usize, text: &str) -> String {
    let mut edited = String::with_capacity(source.len() + text.len());
    edited.push_str(&source[..at]);
    edited.push_str(text);
    edited.push_str(&source[end..]);
    edited
}

/// What an edit changed, as `- old` / `+ new` lines: everything between the lines the two
/// versions share at the start and at the end. The edits here each touch one place, so that is
/// exactly the edit (comparing line by line instead showed every line after an inserted `cut` as
/// changed).
pub fn line_diff(before: &str, after: &str) -> String {
    let old: Vec<&str> = before.lines().collect();
    let new: Vec<&str> = after.lines().collect();
    let same_start = old.iter().zip(&new).take_while(|(a, b)| a == b).count();
    let same_end = old[same_start..].iter().rev().zip(new[same_start..].iter().rev()).take_while(|(a, b)| a == b).count();
    let removed = old[same_start..old.len() - same_end].iter().map(|line| format!("- {line}\n"));
    let added = new[same_start..new.len() - same_end].iter().map(|line| format!("+ {line}\n"));
    removed.chain(added).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_rate_and_keeps_everything_else() {
        let source = "stage warmup { train head  epochs 1  lr 2e-3 }  # head first\nstage finetune { train all lr 1e-3 spread 100 }\n";
        let edited = set_stage_lr(source, "finetune", 0.00052).unwrap();
        assert_eq!(edited, "stage warmup { train head  epochs 1  lr 2e-3 }  # head first\nstage finetune { train all lr 5.2e-4 spread 100 }\n");
        assert_eq!(line_diff(source, &edited), "- stage finetune { train all lr 1e-3 spread 100 }\n+ stage finetune { train all lr 5.2e-4 spread 100 }\n");
    }

    #[test]
    fn adds_an_lr_statement_where_there_is_none() {
        let edited = set_stage_lr("stage s { epochs 2 }\n", "s", 0.01).unwrap();
        assert_eq!(edited, "stage s { lr 1.0e-2  epochs 2 }\n");
        let (_, diagnostics) = crate::syntax::parse(&edited);
        assert!(diagnostics.is_empty());
    }

    #[test]
    fn refuses_unknown_stages_and_broken_recipes() {
        assert!(set_stage_lr("stage s { }\n", "t", 0.1).unwrap_err().contains("no stage `t`"));
        assert!(set_stage_lr("stage s { epochs }\n", "s", 0.1).is_err());
    }

    #[test]
    fn sets_or_adds_the_cut() {
        let with_cut = "recipe \"r\"\nbackbone resnet18 from none\ncut before layer4   # keep three stages\n";
        assert_eq!(set_cut(with_cut, "layer2").unwrap(), "recipe \"r\"\nbackbone resnet18 from none\ncut after layer2   # keep three stages\n");
        let without = "recipe \"r\"\nbackbone resnet18 from none  # pretrained\nhead { linear classes }\n";
        assert_eq!(set_cut(without, "layer3").unwrap(), "recipe \"r\"\nbackbone resnet18 from none  # pretrained\ncut after layer3\nhead { linear classes }\n");
        assert_eq!(line_diff(without, &set_cut(without, "layer3").unwrap()), "+ cut after layer3\n", "an inserted line alone");
        assert_eq!(line_diff(with_cut, &set_cut(with_cut, "layer2").unwrap()), "- cut before layer4   # keep three stages\n+ cut after layer2   # keep three stages\n");
        assert_eq!(line_diff(without, without), "");
        // A statistics block after the weights' source: the cut goes after the block (it once
        // went before it, and `probe --write` refused its own edit with TL0001).
        let with_stats = "backbone resnet18 from recipe \"p.tl\" {\n  channels 3\n  size 28\n}\ndata { train \"t\" }\n";
        let edited = set_cut(with_stats, "layer2").unwrap();
        assert_eq!(edited, "backbone resnet18 from recipe \"p.tl\" {\n  channels 3\n  size 28\n}\ncut after layer2\ndata { train \"t\" }\n");
        assert!(crate::syntax::parse(&edited).1.is_empty());
        let commented = "backbone resnet18 from file \"w}.safetensors\" {  # a } in a comment\n  size 28\n}  # done\n";
        assert_eq!(set_cut(commented, "layer3").unwrap(), format!("{commented}cut after layer3\n"), "after the block's real brace");
        assert!(crate::syntax::parse(&set_cut(commented, "layer3").unwrap()).1.is_empty());
    }

    /// `probe --backbones`: the recipe's name, seed and data as written, its normalisation made
    /// the entry's, everything that names the old network's layers dropped, the entry as backbone.
    #[test]
    fn a_backbone_candidate_keeps_the_data_and_takes_the_entrys_statistics() {
        let source = "recipe \"r\"\nseed 7\nbackbone resnet18 from file \"w.safetensors\" { size 28 }\ndata {\n  train \"t\"  # images\n  batch 8\n  normalize mean 0.5 0.5 0.5 std 0.2 0.2 0.2\n}\ncut after layer4\ngroups { early: stem layer1 }\nstage s { train all }\n";
        let candidate = backbone_candidate(source, "resnet_small", "shapes-small").unwrap();
        assert_eq!(
            candidate,
            "recipe \"r\"\nseed 7\ndata {\n  train \"t\"  # images\n  batch 8\n  normalize backbone\n}\nbackbone resnet_small from zoo \"shapes-small\"\nstage probe { train head  epochs 1 }\n"
        );
        let plain = backbone_candidate("backbone resnet18 from none\ndata { train \"t\" }\n", "resnet18", "e").unwrap();
        assert_eq!(plain, "data { train \"t\"\n  normalize backbone\n}\nbackbone resnet18 from zoo \"e\"\nstage probe { train head  epochs 1 }\n");
        assert!(crate::syntax::parse(&candidate).1.is_empty() && crate::syntax::parse(&plain).1.is_empty());
        assert!(backbone_candidate("recipe \"r\"\n", "resnet18", "e").unwrap_err().contains("no `data`"));
    }
}
