/// The candidate closest to `written`, if it is close enough to be a plausible typo.
pub fn did_you_mean<'a>(written: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let written_lower = written.to_ascii_lowercase();
    candidates
        .into_iter()
        .map(|candidate| (candidate, strsim::jaro_winkler(&written_lower, &candidate.to_ascii_lowercase())))
        .filter(|(candidate, score)| *score >= 0.8 && *candidate != written)
        .max_by(|a, b| a.1.total_cmp(&b.1))
        .map(|(candidate, _)| candidate)
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
    fn stays_quiet_when_nothing_is_close() {
        assert_eq!(did_you_mean("xyz", ["layer1", "head"]), None);
    }
}
