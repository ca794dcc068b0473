//! torchvision's resnet18/34/50 and a CPU-sized resnet with the same naming scheme.

use super::architecture::{Architecture, BlockKind, LayerKind, LayerSpec, Stats};

const STAGE_NAMES: [&str; 4] = ["layer1", "layer2", "layer3", "layer4"];

pub fn all() -> Vec<Architecture> {
    vec![
        torchvision("resnet18", "torchvision ResNet-18 (11.7M parameters)", BlockKind::Basic, [2, 2, 2, 2]),
        torchvision("resnet34", "torchvision ResNet-34 (21.8M parameters)", BlockKind::Basic, [3, 4, 6, 3]),
        torchvision("resnet50", "torchvision ResNet-50 (25.6M parameters)", BlockKind::Bottleneck, [3, 4, 6, 3]),
        small(),
    ]
}

fn layer(name: &'static str, kind: LayerKind) -> LayerSpec {
    LayerSpec { name, kind }
}

fn stages(block: BlockKind, blocks: &[u32], widths: &[u32], first_in: u32, first_stride: u32) -> Vec<LayerSpec> {
    let mut in_channels = first_in;
    blocks
        .iter()
        .zip(widths)
        .enumerate()
        .map(|(index, (&blocks, &width))| {
            let stride = if index == 0 { first_stride } else { 2 };
            let spec = layer(STAGE_NAMES[index], LayerKind::Stage { block, blocks, in_channels, width, stride });
            in_channels = width * block.expansion();
            spec
        })
        .collect()
}

fn default_groups(stem: Vec<&'static str>, stage_count: usize) -> Vec<(&'static str, Vec<&'static str>)> {
    let mut groups = vec![("stem", stem)];
    groups.extend(STAGE_NAMES[..stage_count].iter().map(|name| (*name, vec![*name])));
    groups.push(("top", vec!["avgpool", "fc"]));
    groups
}

fn torchvision(name: &'static str, summary: &'static str, block: BlockKind, blocks: [u32; 4]) -> Architecture {
    let mut layers = vec![
        layer("conv1", LayerKind::Conv { in_channels: 3, out_channels: 64, kernel: 7, stride: 2, padding: 3 }),
        layer("bn1", LayerKind::BatchNorm { features: 64 }),
        layer("relu", LayerKind::Relu),
        layer("maxpool", LayerKind::MaxPool { kernel: 3, stride: 2, padding: 1 }),
    ];
    layers.extend(stages(block, &blocks, &[64, 128, 256, 512], 64, 1));
    let features = 512 * block.expansion();
    layers.push(layer("avgpool", LayerKind::AdaptiveAvgPool));
    layers.push(layer("fc", LayerKind::Linear { in_features: features, out_features: 1000 }));
    Architecture {
        name,
        summary,
        layers,
        default_stats: Stats::imagenet(224),
        default_cut_after: "layer4",
        default_groups: default_groups(vec!["conv1", "bn1", "relu", "maxpool"], 4),
    }
}

/// 16/32/64 channels, two basic blocks a stage, 3x3 stem without max pool: ~176k parameters, made for
/// 32px images on a CPU.
fn small() -> Architecture {
    let mut layers = vec![
        layer("conv1", LayerKind::Conv { in_channels: 3, out_channels: 16, kernel: 3, stride: 1, padding: 1 }),
        layer("bn1", LayerKind::BatchNorm { features: 16 }),
        layer("relu", LayerKind::Relu),
    ];
    layers.extend(stages(BlockKind::Basic, &[2, 2, 2], &[16, 32, 64], 16, 1));
    layers.push(layer("avgpool", LayerKind::AdaptiveAvgPool));
    layers.push(layer("fc", LayerKind::Linear { in_features: 64, out_features: 10 }));
    Architecture {
        name: "resnet_small",
        summary: "CPU-sized resnet: 16/32/64 channels, 2 basic blocks a stage, 3x3 stem (176k parameters)",
        layers,
        default_stats: Stats { mean: vec![0.5, 0.5, 0.5], std: vec![0.25, 0.25, 0.25], input_size: 32, channels: 3 },
        default_cut_after: "layer3",
        default_groups: default_groups(vec!["conv1", "bn1", "relu"], 3),
    }
}

#[cfg(test)]
mod tests {
    use crate::arch::lookup;

    #[test]
    fn resnet_shapes_match_torchvision() {
        let resnet18 = lookup("resnet18").unwrap();
        let kept = resnet18.layer_index("layer4").unwrap() + 1;
        assert_eq!(resnet18.output_after(kept), (512, true));
        assert_eq!(resnet18.size_after(kept, 224), 7);
        let resnet50 = lookup("resnet50").unwrap();
        assert_eq!(resnet50.output_after(resnet50.layers.len() - 1), (2048, false));
        let small = lookup("resnet_small").unwrap();
        assert_eq!(small.size_after(small.layer_index("layer3").unwrap() + 1, 32), 8);
    }
}
