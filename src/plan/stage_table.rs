//! `tlrun plan`: per stage, each group frozen or trained with its effective learning rate, and the
//! image size of every epoch. Nothing runs.

use crate::check::recipe::{BatchNormMode, OptimizerKind, Recipe, ScheduleKind, Stage};

pub fn render(recipe: &Recipe) -> String {
    let mut out = format!(
        "recipe {}  ·  {} ({})  ·  seed {}\n",
        recipe.name,
        recipe.backbone.architecture.name,
        if recipe.backbone.is_pretrained() { "pretrained" } else { "random init" },
        recipe.seed
    );
    out.push_str(&run_options(recipe));
    // Padding widths past u16::MAX panic inside `format!`; a longer name simply overflows its column.
    let name_width = recipe.groups.iter().map(|group| group.name.len()).max().unwrap_or(5).clamp(5, 40);
    for (index, stage) in recipe.stages.iter().enumerate() {
        let optimizer = match stage.optimizer.kind {
            OptimizerKind::Adamw => "adamw",
            OptimizerKind::Sgd => "sgd",
        };
        let schedule = match stage.schedule {
            ScheduleKind::Onecycle => {
                let cycle = &stage.onecycle;
                let (first, low, last) = cycle.moms;
                let momentum = if stage.optimizer.kind == OptimizerKind::Adamw { format!(", beta1 {first} -> {low} -> {last}") } else { String::new() };
                format!("onecycle (pct {}, div {}, final_div {:e}{momentum})", cycle.pct, cycle.div, cycle.final_div)
            }
            ScheduleKind::Cosine => "cosine".to_string(),
            ScheduleKind::Constant => "constant".to_string(),
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
        out.push_str(&stage_options(recipe, stage));
    }
    out
}

/// Run-wide options: batches, loss, averaging, test-time augmentation.
fn run_options(recipe: &Recipe) -> String {
    let images = match recipe.data.train_images {
        Some(images) => format!("{images} training images, "),
        None => String::new(),
    };
    let mut loss = "cross-entropy".to_string();
    if recipe.loss.smoothing > 0.0 {
        loss.push_str(&format!(", label smoothing {}", recipe.loss.smoothing));
    }
    if recipe.loss.balanced_weights {
        loss.push_str(", balanced class weights");
    }
    let ema = recipe.ema.map_or("off".to_string(), |decay| format!("{decay} (evaluated and exported)"));
    let tta = if recipe.tta_flip { "flip" } else { "off" };
    let resize = format!("{:?}", recipe.data.resize_method).to_lowercase();
    let channels = match (recipe.data.channels, recipe.input_channels()) {
        (1, 1) if recipe.data.adapt_channels => "grey images, first convolution adapted to 1 channel".to_string(),
        (1, 1) => "grey images, 1 channel".to_string(),
        (1, _) => "grey images repeated in 3 channels".to_string(),
        (_, network) => format!("{network} channel(s)"),
    };
    format!(
        "{images}batch {}  ·  loss {loss}  ·  ema {ema}  ·  tta {tta}\nimages: resize_method {resize}, {channels}  ·  valid {}\naugment (training images only): {}\n{}{}",
        recipe.data.batch,
        recipe.data.valid_every.describe(),
        augmentations(&recipe.data),
        recipe.l2sp.map_or(String::new(), |l2sp| format!(
            "regularise: L2-SP, α {} · ‖backbone − its starting weights‖² / 2 + β {} · ‖head‖² / 2 added to the loss\n",
            l2sp.alpha, l2sp.beta
        )),
        recipe.bss.map_or(String::new(), |bss| format!(
            "regularise: BSS, η {} · Σ σ² of the {} smallest singular value(s) of each batch's features added to the loss\n",
            bss.eta, bss.k
        )) + &recipe.lwf.map_or(String::new(), |lwf| format!(
            "regularise: LwF, λ {} · T² · KL(pretrained classifier's outputs ‖ its outputs on the trained features) at T {} added to the loss\n",
            lwf.lambda, lwf.temperature
        ))
    )
}

/// What `augment` does to a training image, in the order it happens.
fn augmentations(data: &crate::check::recipe::Data) -> String {
    let mut parts = Vec::new();
    if data.flip {
        parts.push("flip (p 0.5)".to_string());
    }
    if data.crop_padding > 0 {
        parts.push(format!("crop {} (pad, then a random window)", data.crop_padding));
    }
    let image = data.augment;
    let mut affine = Vec::new();
    if image.warp > 0.0 {
        affine.push(format!("warp {}", image.warp));
    }
    if image.rotate > 0.0 {
        affine.push(format!("rotate ±{}°", image.rotate));
    }
    if image.zoom > 1.0 {
        affine.push(format!("zoom 1–{}x", image.zoom));
    }
    if !affine.is_empty() {
        parts.push(format!("{} (one bilinear resample, reflected edges; each p 0.75)", affine.join(", ")));
    }
    if image.lighting > 0.0 {
        parts.push(format!("lighting {} (brightness, then contrast; each p 0.75)", image.lighting));
    }
    let mixing: Vec<String> = [("mixup", image.mixup), ("cutmix", image.cutmix)].into_iter().filter(|(_, alpha)| *alpha > 0.0).map(|(name, alpha)| format!("{name} α {alpha}")).collect();
    if !mixing.is_empty() {
        let switch = if mixing.len() == 2 { "; one of the two a batch, p 0.5" } else { "" };
        parts.push(format!("{} (each batch with its mirror, λ ~ Beta(α, α){switch})", mixing.join(", ")));
    }
    if parts.is_empty() { "none".to_string() } else { parts.join(" → ") }
}

/// One stage's steps, weight decay, accumulation, keep-best and early stopping.
fn stage_options(recipe: &Recipe, stage: &Stage) -> String {
    let steps = match recipe.data.train_images {
        Some(images) => format!("{} optimizer steps per epoch", crate::data_counts::steps_per_epoch(images, recipe.data.batch, stage.accumulate)),
        None => "steps per epoch: unknown until the data is read".to_string(),
    };
    let accumulate = if stage.accumulate > 1 { format!(" (accumulating {} batches)", stage.accumulate) } else { String::new() };
    let decay = if stage.optimizer.weight_decay == 0.0 {
        "no weight decay".to_string()
    } else if stage.optimizer.decay_batchnorm_and_bias {
        format!("weight decay {} on every parameter", stage.optimizer.weight_decay)
    } else {
        format!("weight decay {} (not on BatchNorm or biases)", stage.optimizer.weight_decay)
    };
    let mut out = format!("  {steps}{accumulate}, {decay}\n");
    if let Some(metric) = stage.keep_best {
        out.push_str(&format!("  keep best {}: the stage ends with its best epoch's weights\n", metric.name()));
    }
    if let Some(stop) = stage.early_stop {
        out.push_str(&format!(
            "  stop after {} epoch{} without {} improving by more than {}\n",
            stop.patience,
            if stop.patience == 1 { "" } else { "s" },
            stop.metric.name(),
            stop.min_delta
        ));
    }
    out
}
