//! `tlrun plan`: per stage, each group frozen or trained with its effective learning rate, and the
//! image size of every epoch. Nothing runs.

use crate::check::recipe::{BatchNormMode, OptimizerKind, Recipe, ScheduleKind};

pub fn render(recipe: &Recipe) -> String {
    let mut out = format!(
        "recipe {}  ·  {} ({})  ·  seed {}\n",
        recipe.name,
        recipe.backbone.architecture.name,
        if recipe.backbone.is_pretrained() { "pretrained" } else { "random init" },
        recipe.seed
    );
    let name_width = recipe.groups.iter().map(|group| group.name.len()).max().unwrap_or(5).max(5);
    for (index, stage) in recipe.stages.iter().enumerate() {
        let optimizer = match stage.optimizer.kind {
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Sgd => "sgd",
        };
        let schedule = match stage.schedule {
            ScheduleKind::Onecycle => "onecycle",
            ScheduleKind::Cosine => "cosine",
            ScheduleKind::Constant => "constant",
        };
        let batchnorm = match stage.batchnorm {
            BatchNormMode::Frozen => "frozen",
            BatchNormMode::Train => "train",
        };
        out.push_str(&format!(
            "\nstage {} `{}`: {} epoch{}, {optimizer}, {schedule} schedule, batchnorm in frozen groups: {batchnorm}\n",
            index + 1,
            stage.name,
            stage.epochs,
            if stage.epochs == 1 { "" } else { "s" },
        ));
        out.push_str(&format!("  {:<name_width$}  {:<7}  {:>10}  {:>10}  layers\n", "group", "state", "multiplier", "lr"));
        for (group_index, group) in recipe.groups.iter().enumerate() {
            let trained = stage.trained[group_index];
            let (multiplier, lr) = if trained {
                (format!("{:.4}", stage.multipliers[group_index]), format!("{:.3e}", stage.group_lr(group_index)))
            } else {
                ("-".to_string(), "-".to_string())
            };
            out.push_str(&format!(
                "  {:<name_width$}  {:<7}  {:>10}  {:>10}  {}\n",
                group.name,
                if trained { "train" } else { "frozen" },
                multiplier,
                lr,
                group.layers.join(" ")
            ));
        }
        let sizes: Vec<String> =
            stage.sizes.iter().enumerate().map(|(epoch, size)| format!("{}:{size}px", epoch + 1)).collect();
        out.push_str(&format!("  sizes per epoch  {}\n", sizes.join("  ")));
    }
    out
}
