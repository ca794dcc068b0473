//! Eigen-decomposition of a symmetric matrix: Householder reduction to tridiagonal form, then
//! the implicit QL algorithm (EISPACK's tred2/tql2, as ported in JAMA, public domain). LogME and
//! the Fréchet distance need it; a few hundred lines here spare a linear-algebra dependency.

/// Eigenvalues in ascending order and the matching eigenvectors, one per row of `vectors`
/// (`vectors[k * n .. (k + 1) * n]` belongs to `values[k]`).
pub struct SymmetricEigen {
    pub values: Vec<f64>,
    pub vectors: Vec<f64>,
    pub n: usize,
}

impl SymmetricEigen {
    /// The decomposition of the symmetric `n`×`n` row-major matrix `matrix`.
    pub fn new(matrix: &[f64], n: usize) -> SymmetricEigen {
        assert_eq!(matrix.len(), n * n, "a square matrix");
        if n == 0 {
            return SymmetricEigen { values: Vec::new(), vectors: Vec::new(), n };
        }
        let mut v = matrix.to_vec();
        let mut d = vec![0.0; n];
        let mut e = vec![0.0; n];
        tred2(&mut v, &mut d, &mut e, n);
        // tql2 rotates columns of V; transposed, the rotations run over contiguous rows.
        let mut rows = transpose(&v, n);
        tql2(&mut rows, &mut d, &mut e, n);
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|a, b| d[*a].total_cmp(&d[*b]));
        let values = order.iter().map(|index| d[*index]).collect();
        let vectors = order.iter().flat_map(|index| rows[index * n..(index + 1) * n].iter().copied()).collect();
        SymmetricEigen { values, vectors, n }
    }

    pub fn vector(&self, index: usize) -> &[f64] {
        &self.vectors[index * self.n..(index + 1) * self.n]
    }
}

fn transpose(matrix: &[f64], n: usize) -> Vec<f64> {
    let mut out = vec![0.0; n * n];
    for row in 0..n {
        for column in 0..n {
            out[column * n + row] = matrix[row * n + column];
        }
    }
    out
}

/// Householder tridiagonalisation; `v` (row-major) becomes the accumulated transformation.
fn tred2(v: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    let at = |row: usize, column: usize| row * n + column;
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
    }
    for i in (1..n).rev() {
        let mut scale = 0.0;
        let mut h = 0.0;
        for k in 0..i {
            scale += d[k].abs();
        }
        if scale == 0.0 {
            e[i] = d[i - 1];
            for j in 0..i {
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
                v[at(j, i)] = 0.0;
            }
        } else {
            for k in 0..i {
                d[k] /= scale;
                h += d[k] * d[k];
            }
            let mut f = d[i - 1];
            let mut g = h.sqrt();
            if f > 0.0 {
                g = -g;
            }
            e[i] = scale * g;
            h -= f * g;
            d[i - 1] = f - g;
            for j in 0..i {
                e[j] = 0.0;
            }
            for j in 0..i {
                f = d[j];
                v[at(j, i)] = f;
                g = e[j] + v[at(j, j)] * f;
                for k in j + 1..i {
                    g += v[at(k, j)] * d[k];
                    e[k] += v[at(k, j)] * f;
                }
                e[j] = g;
            }
            f = 0.0;
            for j in 0..i {
                e[j] /= h;
                f += e[j] * d[j];
            }
            let hh = f / (h + h);
            for j in 0..i {
                e[j] -= hh * d[j];
            }
            for j in 0..i {
                f = d[j];
                g = e[j];
                for k in j..i {
                    v[at(k, j)] -= f * e[k] + g * d[k];
                }
                d[j] = v[at(i - 1, j)];
                v[at(i, j)] = 0.0;
            }
        }
        d[i] = h;
    }
    for i in 0..n - 1 {
        v[at(n - 1, i)] = v[at(i, i)];
        v[at(i, i)] = 1.0;
        let h = d[i + 1];
        if h != 0.0 {
            for k in 0..=i {
                d[k] = v[at(k, i + 1)] / h;
            }
            for j in 0..=i {
                let mut g = 0.0;
                for k in 0..=i {
                    g += v[at(k, i + 1)] * v[at(k, j)];
                }
                for k in 0..=i {
                    v[at(k, j)] -= g * d[k];
                }
            }
        }
        for k in 0..=i {
            v[at(k, i + 1)] = 0.0;
        }
    }
    for j in 0..n {
        d[j] = v[at(n - 1, j)];
        v[at(n - 1, j)] = 0.0;
    }
    v[at(n - 1, n - 1)] = 1.0;
    e[0] = 0.0;
}

/// Implicit QL on the tridiagonal (d, e); `rows` holds Vᵀ, so eigenvector k ends in row k.
fn tql2(rows: &mut [f64], d: &mut [f64], e: &mut [f64], n: usize) {
    for i in 1..n {
        e[i - 1] = e[i];
    }
    e[n - 1] = 0.0;
    let mut f = 0.0;
    let mut tst1: f64 = 0.0;
    let eps = f64::EPSILON;
    for l in 0..n {
        tst1 = tst1.max(d[l].abs() + e[l].abs());
        let mut m = l;
        while m < n {
            if e[m].abs() <= eps * tst1 {
                break;
            }
            m += 1;
        }
        // e[n-1] is zero, so m < n always; the guard keeps a NaN input from running past the end.
        if m > l && m < n {
            // Converges in a handful of iterations; the cap keeps a NaN input from looping forever.
            for _ in 0..64 {
                let mut g = d[l];
                let mut p = (d[l + 1] - g) / (2.0 * e[l]);
                let mut r = p.hypot(1.0);
                if p < 0.0 {
                    r = -r;
                }
                d[l] = e[l] / (p + r);
                d[l + 1] = e[l] * (p + r);
                let dl1 = d[l + 1];
                let mut h = g - d[l];
                for value in d.iter_mut().take(n).skip(l + 2) {
                    *value -= h;
                }
                f += h;
                p = d[m];
                let mut c = 1.0;
                let mut c2 = c;
                let mut c3 = c;
                let el1 = e[l + 1];
                let mut s = 0.0;
                let mut s2 = 0.0;
                for i in (l..m).rev() {
                    c3 = c2;
                    c2 = c;
                    s2 = s;
                    g = c * e[i];
                    h = c * p;
                    r = p.hypot(e[i]);
                    e[i + 1] = s * r;
                    s = e[i] / r;
                    c = p / r;
                    p = c * d[i] - s * g;
                    d[i + 1] = h + s * (c * g + s * d[i]);
                    let (low, high) = rows.split_at_mut((i + 1) * n);
                    let row_i = &mut low[i * n..];
                    let row_next = &mut high[..n];
                    for k in 0..n {
                        let h = row_next[k];
                        row_next[k] = s * row_i[k] + c * h;
                        row_i[k] = c * row_i[k] - s * h;
                    }
                }
                p = -s * s2 * c3 * el1 * e[l] / dl1;
                e[l] = s * p;
                d[l] = c * p;
                if e[l].abs() <= eps * tst1 {
                    break;
                }
            }
        }
        d[l] += f;
        e[l] = 0.0;
    }
}

#[cfg(test)]
mod tests {
    use super::SymmetricEigen;

    #[test]
    fn reconstructs_a_symmetric_matrix() {
        let n = 7;
        let mut matrix = vec![0.0; n * n];
        for row in 0..n {
            for column in 0..=row {
                let value = ((row * 31 + column * 17) % 11) as f64 - 5.0 + if row == column { 3.0 } else { 0.0 };
                matrix[row * n + column] = value;
                matrix[column * n + row] = value;
            }
        }
        let eigen = SymmetricEigen::new(&matrix, n);
        assert!(eigen.values.windows(2).all(|pair| pair[0] <= pair[1]));
        for row in 0..n {
            for column in 0..n {
                let rebuilt: f64 = (0..n).map(|k| eigen.values[k] * eigen.vector(k)[row] * eigen.vector(k)[column]).sum();
                assert!((rebuilt - matrix[row * n + column]).abs() < 1e-9, "({row}, {column}): {rebuilt} against {}", matrix[row * n + column]);
            }
        }
        for a in 0..n {
            for b in 0..n {
                let dot: f64 = eigen.vector(a).iter().zip(eigen.vector(b)).map(|(x, y)| x * y).sum();
                assert!((dot - if a == b { 1.0 } else { 0.0 }).abs() < 1e-9);
            }
        }
    }
}
