//! Pooled features of a sample of images, one row per image, in f64 (LogME and the probes work
//! in double precision, as the reference implementation does).

#[derive(Debug, Clone, PartialEq)]
pub struct Features {
    pub rows: usize,
    pub width: usize,
    /// Row-major, `rows × width`.
    pub values: Vec<f64>,
}

impl Features {
    pub fn new(rows: usize, width: usize, values: Vec<f64>) -> Features {
        assert_eq!(values.len(), rows * width, "rows × width values");
        Features { rows, width, values }
    }

    pub fn row(&self, index: usize) -> &[f64] {
        &self.values[index * self.width..(index + 1) * self.width]
    }

    /// The rows at `indices`, in that order.
    pub fn select(&self, indices: &[usize]) -> Features {
        Features::new(indices.len(), self.width, indices.iter().flat_map(|index| self.row(*index).iter().copied()).collect())
    }

    /// FᵀF, `width × width`, row-major.
    pub fn gram(&self) -> Vec<f64> {
        let width = self.width;
        let mut gram = vec![0.0; width * width];
        for row in 0..self.rows {
            let values = self.row(row);
            for (a, value_a) in values.iter().enumerate() {
                if *value_a == 0.0 {
                    continue;
                }
                let line = &mut gram[a * width..a * width + a + 1];
                for (b, value_b) in values[..=a].iter().enumerate() {
                    line[b] += value_a * value_b;
                }
            }
        }
        for a in 0..width {
            for b in 0..a {
                gram[b * width + a] = gram[a * width + b];
            }
        }
        gram
    }

    /// Fᵀy for one column `y` of length `rows`.
    pub fn transpose_times(&self, y: &[f64]) -> Vec<f64> {
        let mut out = vec![0.0; self.width];
        for (row, weight) in y.iter().enumerate() {
            if *weight == 0.0 {
                continue;
            }
            for (slot, value) in out.iter_mut().zip(self.row(row)) {
                *slot += weight * value;
            }
        }
        out
    }

    /// F m for a vector `m` of length `width`.
    pub fn times(&self, m: &[f64]) -> Vec<f64> {
        (0..self.rows).map(|row| self.row(row).iter().zip(m).map(|(a, b)| a * b).sum()).collect()
    }

    /// The mean row.
    pub fn mean(&self) -> Vec<f64> {
        let mut mean = vec![0.0; self.width];
        for row in 0..self.rows {
            for (slot, value) in mean.iter_mut().zip(self.row(row)) {
                *slot += value;
            }
        }
        mean.iter_mut().for_each(|value| *value /= self.rows.max(1) as f64);
        mean
    }

    /// Every row minus `mean`.
    pub fn centred(&self, mean: &[f64]) -> Features {
        let values = self.values.chunks(self.width.max(1)).flat_map(|row| row.iter().zip(mean).map(|(a, b)| a - b)).collect();
        Features::new(self.rows, self.width, values)
    }
}

/// Indices of a stratified split: every `every`-th image of each class (in order) is held out.
pub fn stratified_split(labels: &[usize], every: usize) -> (Vec<usize>, Vec<usize>) {
    let mut seen = std::collections::HashMap::new();
    let (mut fit, mut held_out) = (Vec::new(), Vec::new());
    for (index, label) in labels.iter().enumerate() {
        let count = seen.entry(*label).or_insert(0usize);
        if *count % every == every - 1 { held_out.push(index) } else { fit.push(index) }
        *count += 1;
    }
    (fit, held_out)
}
