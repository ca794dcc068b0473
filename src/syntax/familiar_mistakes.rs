//! What users of fastai, Keras and PyTorch write out of habit (`learning_rate`, `epochs: 4`,
//! `slice(1e-5, 1e-3)`, `.5`, `NaN`), and what to write instead: a syntax error's specific help.

/// Help for a syntax error at `position`, where `found` is the word there and `previous` the word
/// before it. `on_previous` says the help is about `previous` (a habit word read as a group name
/// after `train head`), so the error can label that word too.
pub struct Hint {
    pub help: String,
    pub on_previous: bool,
}

pub fn hint(source: &str, position: usize, found: &str, previous: Option<&str>) -> Option<Hint> {
    let here = |help: String| Some(Hint { help, on_previous: false });
    if let Some(meant) = habit_word(found) {
        return here(format!("`{found}` is not a keyword here: write {meant}"));
    }
    if found == ":" {
        if let Some(keyword) = previous.filter(|word| is_value_keyword(word)) {
            let value = source[position + 1..].lines().next().unwrap_or("").trim();
            let example = if value.is_empty() { format!("`{keyword} VALUE`") } else { format!("`{keyword} {value}`") };
            return here(format!("write {example}, without a colon: only `groups` and `multipliers` use `name: value`"));
        }
    }
    if found.starts_with('.') && found[1..].starts_with(|c: char| c.is_ascii_digit()) {
        return here(format!("write `0{found}`: a number starts with a digit"));
    }
    if found == "slice" {
        return here(slice_help(&source[position..]));
    }
    if matches!(found.to_ascii_lowercase().as_str(), "nan" | "inf" | "infinity") {
        return here(format!("`{found}` is not a value a recipe can train with: write a finite number, e.g. `1e-3`"));
    }
    if found == "-" {
        if previous == Some("from") {
            return here(
                "`train from` takes a group name, counted from the input, not fastai's negative index: \
                 `freeze_to(-2)` is `train from` the second-to-last group's name (`tlrun plan` lists the groups)"
                    .to_string(),
            );
        }
        if source[position + 1..].starts_with(|c: char| c.is_ascii_digit() || c == '.') {
            return here("negative numbers have no meaning here: counts, sizes and rates are positive".to_string());
        }
    }
    // `train head  learning_rate 1e-3`: the habit word was read as one more group name.
    let previous = previous?;
    habit_word(previous).map(|meant| Hint { help: format!("`{previous}` is not a keyword: write {meant}"), on_previous: true })
}

/// What to write for a name other tools use.
fn habit_word(word: &str) -> Option<&'static str> {
    Some(match word {
        "learning_rate" | "lr_max" | "base_lr" | "learningrate" | "max_lr" | "LR" => "`lr 1e-3` (in a stage)",
        "batch_size" | "bs" | "batchsize" => "`batch 64` (in the `data` block)",
        "num_epochs" | "n_epochs" | "n_epoch" | "max_epochs" | "nb_epoch" => "`epochs 4` (in a stage)",
        "weight_decay" => "`optimizer adamw wd 0.01`",
        "freeze_to" => "`train from GROUP` (the first group that trains)",
        "unfreeze" => "`train all`",
        "fine_tune" | "fit_one_cycle" => {
            "one `stage` per phase: `stage warmup { train head  epochs 1 }` then `stage finetune { train all  epochs 4  lr 1e-3 spread 100 }`"
        }
        "label_smoothing" => "`loss cross_entropy smoothing 0.1`",
        "img_size" | "image_size" | "input_size" => "`size 224` (in the `data` block)",
        "momentum" => "`optimizer sgd momentum 0.9`",
        _ => return None,
    })
}

/// Statements that take a value after their keyword, where `keyword: value` is a habit.
fn is_value_keyword(word: &str) -> bool {
    matches!(word, "epochs" | "lr" | "batch" | "size" | "seed" | "spread" | "accumulate" | "ema" | "wd" | "momentum" | "smoothing" | "channels")
}

/// fastai's `slice(lo, hi)` as tlrun's `lr hi spread hi/lo`, with the numbers when they parse.
fn slice_help(text: &str) -> String {
    let arguments = text.find('(').and_then(|open| {
        let close = text[open..].find(')')? + open;
        let mut parts = text[open + 1..close].split(',').map(|part| part.trim().parse::<f64>());
        match (parts.next(), parts.next(), parts.next()) {
            (Some(Ok(low)), Some(Ok(high)), None) if low > 0.0 && high > low => Some((low, high)),
            _ => None,
        }
    });
    match arguments {
        Some((low, high)) => format!(
            "fastai's `slice({low:e}, {high:e})` is `lr {high:e} spread {}` here: the last group trains at {high:e}, the first at {high:e}/{}",
            round_spread(high / low),
            round_spread(high / low)
        ),
        None => "fastai's `slice(low, high)` is `lr HIGH spread HIGH/LOW` here, e.g. `lr 1e-3 spread 100`".to_string(),
    }
}

/// A spread as a recipe writes it: whole when it is one, else four significant digits.
fn round_spread(spread: f64) -> String {
    if (spread - spread.round()).abs() < 1e-6 * spread { format!("{}", spread.round()) } else { format!("{spread:.4}") }
}

#[cfg(test)]
mod tests {
    use super::hint;

    fn help(source: &str, found: &str, previous: Option<&str>) -> String {
        let position = source.find(found).unwrap();
        hint(source, position, found, previous).map(|hint| hint.help).unwrap_or_default()
    }

    #[test]
    fn slice_becomes_lr_and_spread() {
        assert!(help("lr slice(1e-5, 1e-3)\n", "slice", Some("lr")).contains("`lr 1e-3 spread 100`"), "{}", help("lr slice(1e-5, 1e-3)\n", "slice", Some("lr")));
        assert!(help("lr slice(x)\n", "slice", Some("lr")).contains("`lr HIGH spread HIGH/LOW`"));
    }

    #[test]
    fn habits_get_what_to_write() {
        assert!(help("  epochs: 4\n", ":", Some("epochs")).contains("`epochs 4`, without a colon"));
        assert!(help("lr .5", ".5", Some("lr")).contains("`0.5`"));
        assert!(help("lr NaN", "NaN", Some("lr")).contains("finite number"));
        assert!(help("train from -2", "-", Some("from")).contains("group name"));
        assert!(help("learning_rate 1e-3", "learning_rate", None).contains("`lr 1e-3`"));
        let after_list = hint("train head learning_rate 1e-3", 25, "1e", Some("learning_rate")).unwrap();
        assert!(after_list.on_previous && after_list.help.contains("`lr 1e-3`"));
        assert!(hint("epochs 4", 0, "epochs", None).is_none());
    }
}
