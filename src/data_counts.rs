//! How many images a class holds out for validation, and how an epoch's images become batches.
//! Shared by the checker (the few-steps warning, `tlrun plan`) and the runtime, so that what lint
//! says about an epoch is what a run does.

use std::ops::Range;

/// Images a class of `count` gives to a `valid split` of `fraction`: `round(count * fraction)`,
/// but at least one when the class has two or more images and at most `count - 1`, so that every
/// class is both trained and measured. `fraction <= 0` (or NaN) holds nothing out.
pub fn held_out(count: usize, fraction: f64) -> usize {
    let fraction = if fraction.is_nan() { 0.0 } else { fraction.clamp(0.0, 1.0) };
    if fraction > 0.0 && count >= 2 { ((count as f64 * fraction).round() as usize).clamp(1, count - 1) } else { 0 }
}

/// The batches of one epoch over `count` images, as index ranges into the epoch's order.
///
/// Every image is seen once. The last, partial batch is kept (PyTorch's `drop_last=False`) when
/// it holds at least two images; a single leftover image joins the batch before it, because
/// BatchNorm cannot normalise a batch of one. A batch size of 0 counts as 1.
pub fn batch_ranges(count: usize, batch: usize) -> Vec<Range<usize>> {
    let batch = batch.max(1);
    let mut ranges: Vec<Range<usize>> = (0..count).step_by(batch).map(|start| start..(start + batch).min(count)).collect();
    if ranges.len() >= 2 && ranges.last().is_some_and(|last| last.len() == 1) {
        let last = ranges.pop().unwrap_or(0..0);
        if let Some(previous) = ranges.last_mut() {
            previous.end = last.end;
        }
    }
    ranges
}

/// Optimizer steps in one epoch: batches, divided by gradient accumulation (a trailing group of
/// fewer batches still steps).
pub fn steps_per_epoch(count: usize, batch: usize, accumulate: usize) -> usize {
    batch_ranges(count, batch).len().div_ceil(accumulate.max(1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes(count: usize, batch: usize) -> Vec<usize> {
        batch_ranges(count, batch).iter().map(|range| range.len()).collect()
    }

    #[test]
    fn keeps_the_partial_batch_and_folds_a_single_leftover() {
        assert_eq!(sizes(50, 32), vec![32, 18]);
        assert_eq!(sizes(64, 32), vec![32, 32]);
        assert_eq!(sizes(65, 32), vec![32, 33]);
        assert_eq!(sizes(66, 32), vec![32, 32, 2]);
        assert_eq!(sizes(10, 64), vec![10]);
        assert_eq!(sizes(1, 64), vec![1]);
        assert!(sizes(0, 8).is_empty());
        assert_eq!(sizes(3, 0), vec![1, 2]);
    }

    #[test]
    fn every_image_is_in_exactly_one_batch() {
        for count in 0..70 {
            for batch in 1..40 {
                let ranges = batch_ranges(count, batch);
                let covered: Vec<usize> = ranges.iter().flat_map(|range| range.clone()).collect();
                assert_eq!(covered, (0..count).collect::<Vec<_>>(), "count {count} batch {batch}");
                assert!(ranges.iter().all(|range| range.len() >= 2 || count < 2 || batch == 1), "count {count} batch {batch}");
            }
        }
    }

    #[test]
    fn steps_count_accumulated_batches() {
        assert_eq!(steps_per_epoch(50, 32, 1), 2);
        assert_eq!(steps_per_epoch(100, 8, 4), 4); // 12 batches of 8 and one of 4, four to a step
        assert_eq!(steps_per_epoch(0, 8, 1), 0);
    }

    #[test]
    fn held_out_keeps_every_class_in_both_splits() {
        assert_eq!(held_out(10, 0.2), 2);
        assert_eq!(held_out(4, 0.2), 1);
        assert_eq!(held_out(1, 0.5), 0);
        assert_eq!(held_out(2, 0.2), 1);
        assert_eq!(held_out(5, 1.0), 4);
        assert_eq!(held_out(5, f64::NAN), 0);
    }
}
