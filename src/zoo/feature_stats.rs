//! What a zoo entry keeps of its training images' features: the mean and covariance of the
//! pooled output of one layer (`features.safetensors`, float64, the layer's name in the header's
//! metadata), so a later recipe can measure how far its own images are (Fréchet distance).

use std::path::Path;

use crate::probe::FeatureStats;

pub const FEATURES_FILE: &str = "features.safetensors";

/// The file's bytes: tensors `mean` [D] and `covariance` [D, D], metadata `layer` and `images`.
pub fn encode(layer: &str, stats: &FeatureStats) -> Result<Vec<u8>, String> {
    use safetensors::tensor::TensorView;
    let width = stats.width();
    let bytes = |values: &[f64]| values.iter().flat_map(|value| value.to_le_bytes()).collect::<Vec<u8>>();
    let (mean, covariance) = (bytes(&stats.mean), bytes(&stats.covariance));
    let tensors = vec![
        ("mean".to_string(), TensorView::new(safetensors::Dtype::F64, vec![width], &mean).map_err(|error| error.to_string())?),
        ("covariance".to_string(), TensorView::new(safetensors::Dtype::F64, vec![width, width], &covariance).map_err(|error| error.to_string())?),
    ];
    let metadata = std::collections::HashMap::from([("layer".to_string(), layer.to_string()), ("images".to_string(), stats.images.to_string())]);
    safetensors::serialize(tensors, Some(metadata)).map_err(|error| error.to_string())
}

/// The layer and statistics in a features file's bytes; `Err` says what is wrong with them.
pub fn decode(bytes: &[u8]) -> Result<(String, FeatureStats), String> {
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|error| error.to_string())?;
    let (_, header) = safetensors::SafeTensors::read_metadata(bytes).map_err(|error| error.to_string())?;
    let metadata = header.metadata().clone().unwrap_or_default();
    let layer = metadata.get("layer").cloned().ok_or("no `layer` in its metadata")?;
    let images = metadata.get("images").and_then(|count| count.parse().ok()).unwrap_or(0);
    let read = |name: &str, shape: &[usize]| -> Result<Vec<f64>, String> {
        let view = file.tensor(name).map_err(|error| format!("tensor `{name}`: {error}"))?;
        if view.dtype() != safetensors::Dtype::F64 || view.shape() != shape {
            return Err(format!("tensor `{name}` is {:?} {:?}, not F64 {shape:?}", view.dtype(), view.shape()));
        }
        Ok(view.data().chunks_exact(8).map(|chunk| f64::from_le_bytes(chunk.try_into().unwrap_or([0; 8]))).collect())
    };
    let width = file.tensor("mean").map_err(|error| format!("tensor `mean`: {error}"))?.shape().first().copied().unwrap_or(0);
    let mean = read("mean", &[width])?;
    let covariance = read("covariance", &[width, width])?;
    Ok((layer, FeatureStats { images, mean, covariance }))
}

/// The statistics a zoo entry folder holds, if it holds readable ones.
pub fn read(entry: &Path) -> Option<(String, FeatureStats)> {
    let bytes = std::fs::read(entry.join(FEATURES_FILE)).ok()?;
    decode(&bytes).ok()
}
