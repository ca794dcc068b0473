/// The candidate closest to `written`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(written: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let written_plain = plain(written);
    let candidates: Vec<&'a str> = candidates.into_iter().filter(|candidate| *candidate != written).collect();
    // The same name spelled another way (timm's `resnet-18`, `ResNet18`, `resnet_18`) is the answer.
    if let Some(same) = candidates.iter().find(|candidate| plain(candidate) == written_plain) {
        return Some(same);
    }
    candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::jaro_winkler(&written_plain, &plain(candidate))))
        .filter(|(_, score)| *score >= 0.8)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
}

/// A name without case and separators, for comparing spellings.
fn plain(name: &str) -> String {
    name.chars().filter(|c| !matches!(c, '-' | '_' | '.' | ' ')).map(|c| c.to_ascii_lowercase()).collect()
}

#[cfg(test)]
mod tests {
    use super::did_you_mean;

    #[test]
    fn suggests_the_closest_name() {
        assert_eq!(did_you_mean("layr3", ["layer1", "layer3", "head"]), Some("layer3"));
        assert_eq!(did_you_mean("resnet19", ["resnet18", "resnet50"]), Some("resnet18"));
    }

    #[test]
    fn understands_other_spellings_of_the_same_name() {
        for written in ["resnet-18", "ResNet18", "RESNET_18"] {
            assert_eq!(did_you_mean(written, ["resnet18", "resnet34", "resnet50"]), Some("resnet18"), "{written}");
        }
    }

    #[test]
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("xyz", ["layer1", "head"]), None);
    }
}
