//! The trained network as an ONNX model (opset 17): the backbone as cut plus the head, in
//! evaluation mode (BatchNorm on running statistics, dropout gone), with a dynamic batch axis.
//! The protobuf types come from the `onnx-protobuf` crate; this file only decides the graph.
//! Initializers keep the torchvision names of the weights file (`layer1.0.conv1.weight`).

use std::path::Path;

use burn::module::Param;
use burn::nn::conv::Conv2d;
use burn::nn::{BatchNorm, Linear, PaddingConfig2d};
use burn::prelude::*;
use onnx_protobuf::attribute_proto::AttributeType;
use onnx_protobuf::tensor_proto::DataType;
use onnx_protobuf::tensor_shape_proto::Dimension;
use onnx_protobuf::{AttributeProto, GraphProto, Message, ModelProto, NodeProto, OperatorSetIdProto, StringStringEntryProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, type_proto};

use crate::data::normalisation;
use super::model::head::HeadOp;
use super::model::residual_block::ResidualBlock;
use super::model::{BackboneOp, Network};
use crate::check::recipe::Pool;
use crate::diagnostics::{Code, Diagnostic};
use crate::model_card::ModelCard;

/// The input's name: NCHW float32, normalised with the card's mean and std (or, with
/// preprocessing baked in, pixel values 0–255 already resized to the card's size).
pub const INPUT: &str = "images";
/// The output's name: one row of class logits per image.
pub const OUTPUT: &str = "logits";
const OPSET: i64 = 17;
/// IR version 8 (ONNX 1.10+): read by every ONNX Runtime since 1.10.
const IR_VERSION: i64 = 8;

/// Write `network` to `path` as ONNX. With `with_preprocessing` the graph starts with the
/// card's `(pixel / 255 - mean) / std`, in the same f32 arithmetic as tlrun's own preprocessing.
pub fn write(network: &Network, card: &ModelCard, path: &Path, with_preprocessing: bool) -> Result<(), Diagnostic> {
    let model = model(network, card, with_preprocessing)?;
    let bytes = model
        .write_to_bytes()
        .map_err(|error| Diagnostic::new(Code::RunFolderUnwritable, format!("cannot encode {} as ONNX: {error}", path.display())))?;
    super::run_folder::write_atomic(path, &bytes)
}

/// The ONNX model of `network` (exposed for tests that inspect the graph).
pub fn model(network: &Network, card: &ModelCard, with_preprocessing: bool) -> Result<ModelProto, Diagnostic> {
    let mut graph = Graph::default();
    let mut x = INPUT.to_string();
    if with_preprocessing {
        x = graph.normalise(&x, card)?;
    }
    let x = graph.backbone(network, x);
    let logits = graph.head(network, x);
    graph.nodes.push(node("Identity", &[&logits], OUTPUT, Vec::new()));

    let size = i64::from(card.preprocessing.size);
    let channels = i64::from(card.input_channels);
    let mut proto = GraphProto::new();
    proto.name = format!("tlrun-{}", card.recipe);
    proto.node = graph.nodes;
    proto.initializer = graph.initializers;
    let input_doc = if with_preprocessing {
        format!("NCHW float32 RGB/grey pixel values 0-255, resized to {size}x{size} ({:?}); normalisation is in the graph", card.preprocessing.resize_method)
    } else {
        format!(
            "NCHW float32, resized to {size}x{size} ({:?}), then (pixel/255 - mean) / std with mean {:?} std {:?}",
            card.preprocessing.resize_method, card.preprocessing.mean, card.preprocessing.std
        )
    };
    proto.input = vec![value_info(INPUT, &[None, Some(channels), Some(size), Some(size)], &input_doc)];
    proto.output = vec![value_info(OUTPUT, &[None, Some(card.classes.len() as i64)], "class logits; softmax gives probabilities")];

    let mut model = ModelProto::new();
    model.ir_version = IR_VERSION;
    let mut opset = OperatorSetIdProto::new();
    opset.version = OPSET;
    model.opset_import = vec![opset];
    model.producer_name = "tlrun".to_string();
    model.producer_version = env!("CARGO_PKG_VERSION").to_string();
    model.doc_string = format!("{} cut after {}, trained by recipe `{}`", card.architecture, card.cut_after, card.recipe);
    let card_json = card.to_json()?;
    model.metadata_props = vec![
        entry("classes", &card.classes.join("\n")),
        entry("tlrun.model_card", &card_json),
        entry("preprocessing_baked", if with_preprocessing { "true" } else { "false" }),
    ];
    model.graph = Some(proto).into();
    Ok(model)
}

#[derive(Default)]
struct Graph {
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    counter: usize,
}

impl Graph {
    fn fresh(&mut self, hint: &str) -> String {
        self.counter += 1;
        format!("{hint}_{}", self.counter)
    }

    fn constant(&mut self, name: &str, dims: &[usize], values: &[f32]) -> String {
        let mut tensor = TensorProto::new();
        tensor.name = name.to_string();
        tensor.dims = dims.iter().map(|dim| *dim as i64).collect();
        tensor.data_type = DataType::FLOAT as i32;
        tensor.raw_data = values.iter().flat_map(|value| value.to_le_bytes()).collect();
        self.initializers.push(tensor);
        name.to_string()
    }

    fn parameter<const D: usize>(&mut self, name: &str, param: &Param<Tensor<D>>) -> String {
        let tensor = param.val();
        let dims = tensor.dims();
        let values = tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("parameters are floats");
        self.constant(name, &dims, &values)
    }

    fn op(&mut self, op_type: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        let output = self.fresh(&op_type.to_ascii_lowercase());
        self.nodes.push(node(op_type, inputs, &output, attributes));
        output
    }

    /// `(pixel / 255 - mean) / std` as `pixel * scale - offset` with tlrun's own f32 constants.
    fn normalise(&mut self, x: &str, card: &ModelCard) -> Result<String, Diagnostic> {
        let (scale, offset) = normalisation(&card.preprocessing.mean, &card.preprocessing.std)?;
        let channels = card.input_channels as usize;
        let scale = self.constant("preprocessing.scale", &[1, channels, 1, 1], &scale[..channels]);
        let offset = self.constant("preprocessing.offset", &[1, channels, 1, 1], &offset[..channels]);
        let scaled = self.op("Mul", &[x, &scale], Vec::new());
        Ok(self.op("Sub", &[&scaled, &offset], Vec::new()))
    }

    fn conv(&mut self, name: &str, conv: &Conv2d, x: &str) -> String {
        let weight = self.parameter(&format!("{name}.weight"), &conv.weight);
        let [_, _, kernel_h, kernel_w] = conv.weight.val().dims();
        let mut inputs = vec![x.to_string(), weight];
        if let Some(bias) = &conv.bias {
            inputs.push(self.parameter(&format!("{name}.bias"), bias));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.op(
            "Conv",
            &inputs,
            vec![
                ints("kernel_shape", &[kernel_h as i64, kernel_w as i64]),
                ints("strides", &[conv.stride[0] as i64, conv.stride[1] as i64]),
                ints("dilations", &[conv.dilation[0] as i64, conv.dilation[1] as i64]),
                padding(&conv.padding),
                int("group", conv.groups as i64),
            ],
        )
    }

    fn batch_norm(&mut self, name: &str, norm: &BatchNorm, x: &str) -> String {
        let scale = self.parameter(&format!("{name}.weight"), &norm.gamma);
        let bias = self.parameter(&format!("{name}.bias"), &norm.beta);
        let mean = self.running(&format!("{name}.running_mean"), norm.running_mean.value());
        let var = self.running(&format!("{name}.running_var"), norm.running_var.value());
        self.op("BatchNormalization", &[x, &scale, &bias, &mean, &var], vec![float("epsilon", norm.epsilon as f32)])
    }

    fn running(&mut self, name: &str, tensor: Tensor<1>) -> String {
        let dims = tensor.dims();
        let values = tensor.into_data().convert::<f32>().try_into_vec::<f32>().expect("statistics are floats");
        self.constant(name, &dims, &values)
    }

    /// burn's `Linear` holds its weight as `[in, out]`: `Gemm` without transposing.
    fn linear(&mut self, name: &str, linear: &Linear, x: &str) -> String {
        let weight = self.parameter(&format!("{name}.weight"), &linear.weight);
        let mut inputs = vec![x.to_string(), weight];
        if let Some(bias) = &linear.bias {
            inputs.push(self.parameter(&format!("{name}.bias"), bias));
        }
        let inputs: Vec<&str> = inputs.iter().map(String::as_str).collect();
        self.op("Gemm", &inputs, Vec::new())
    }

    fn block(&mut self, name: &str, block: &ResidualBlock, x: &str) -> String {
        let identity = match &block.downsample {
            Some(downsample) => {
                let projected = self.conv(&format!("{name}.downsample.0"), &downsample.conv, x);
                self.batch_norm(&format!("{name}.downsample.1"), &downsample.bn, &projected)
            }
            None => x.to_string(),
        };
        let out = self.conv(&format!("{name}.conv1"), &block.conv1, x);
        let out = self.batch_norm(&format!("{name}.bn1"), &block.bn1, &out);
        let out = self.op("Relu", &[&out], Vec::new());
        let out = self.conv(&format!("{name}.conv2"), &block.conv2, &out);
        let mut out = self.batch_norm(&format!("{name}.bn2"), &block.bn2, &out);
        if let (Some(conv3), Some(bn3)) = (&block.conv3, &block.bn3) {
            out = self.op("Relu", &[&out], Vec::new());
            out = self.conv(&format!("{name}.conv3"), conv3, &out);
            out = self.batch_norm(&format!("{name}.bn3"), bn3, &out);
        }
        let sum = self.op("Add", &[&out, &identity], Vec::new());
        self.op("Relu", &[&sum], Vec::new())
    }

    /// The kept layers in order, as `Backbone::forward` runs them (its fused evaluation ops
    /// compute the same functions).
    fn backbone(&mut self, network: &Network, input: String) -> String {
        let backbone = &network.backbone;
        let mut x = input;
        for op in &backbone.ops {
            x = match op {
                BackboneOp::Conv1 => match &backbone.conv1 {
                    Some(conv1) => self.conv("conv1", conv1, &x),
                    None => x,
                },
                BackboneOp::Bn1 => match &backbone.bn1 {
                    Some(bn1) => self.batch_norm("bn1", bn1, &x),
                    None => x,
                },
                BackboneOp::Relu => self.op("Relu", &[&x], Vec::new()),
                BackboneOp::MaxPool => match &backbone.maxpool {
                    Some(pool) => {
                        self.op(
                            "MaxPool",
                            &[&x],
                            vec![
                                ints("kernel_shape", &[pool.kernel_size[0] as i64, pool.kernel_size[1] as i64]),
                                ints("strides", &[pool.stride[0] as i64, pool.stride[1] as i64]),
                                padding(&pool.padding),
                                int("ceil_mode", i64::from(pool.ceil_mode)),
                            ],
                        )
                    }
                    None => x,
                },
                BackboneOp::Stage(number) => {
                    let blocks = match number {
                        1 => &backbone.layer1,
                        2 => &backbone.layer2,
                        3 => &backbone.layer3,
                        _ => &backbone.layer4,
                    };
                    let mut y = x;
                    for (index, block) in blocks.as_deref().unwrap_or_default().iter().enumerate() {
                        y = self.block(&format!("layer{number}.{index}"), block, &y);
                    }
                    y
                }
                BackboneOp::AvgPool => self.op("GlobalAveragePool", &[&x], Vec::new()),
                BackboneOp::Fc => match &backbone.fc {
                    Some(fc) => {
                        let flat = self.op("Flatten", &[&x], vec![int("axis", 1)]);
                        let out = self.linear("fc", fc, &flat);
                        let axes = self.constant_ints("fc.unsqueeze_axes", &[2, 3]);
                        self.op("Unsqueeze", &[&out, &axes], Vec::new())
                    }
                    None => x,
                },
            };
        }
        x
    }

    fn constant_ints(&mut self, name: &str, values: &[i64]) -> String {
        let mut tensor = TensorProto::new();
        tensor.name = name.to_string();
        tensor.dims = vec![values.len() as i64];
        tensor.data_type = DataType::INT64 as i32;
        tensor.raw_data = values.iter().flat_map(|value| value.to_le_bytes()).collect();
        self.initializers.push(tensor);
        name.to_string()
    }

    /// The head's ops, as `Head::forward` runs them: spatial until a pool or flatten, then flat.
    /// Dropout is the identity in evaluation, so it has no node.
    fn head(&mut self, network: &Network, input: String) -> String {
        let head = &network.head;
        let mut x = input;
        let mut flat = false;
        for (position, op) in head.ops.iter().enumerate() {
            let name = format!("head.{position}");
            match *op {
                HeadOp::Pool(pool) if !flat => {
                    x = match pool {
                        Pool::Avg => self.op("GlobalAveragePool", &[&x], Vec::new()),
                        Pool::Max => self.op("GlobalMaxPool", &[&x], Vec::new()),
                        // fastai's AdaptiveConcatPool2d: max first, then average.
                        Pool::Concat => {
                            let max = self.op("GlobalMaxPool", &[&x], Vec::new());
                            let average = self.op("GlobalAveragePool", &[&x], Vec::new());
                            self.op("Concat", &[&max, &average], vec![int("axis", 1)])
                        }
                    };
                }
                HeadOp::Flatten if !flat => {
                    x = self.op("Flatten", &[&x], vec![int("axis", 1)]);
                    flat = true;
                }
                HeadOp::BatchNorm(index) if flat => x = self.batch_norm(&name, &head.norms[index], &x),
                HeadOp::Relu if flat => x = self.op("Relu", &[&x], Vec::new()),
                HeadOp::Linear(index) if flat => x = self.linear(&name, &head.linears[index], &x),
                // Ops the burn head skips in this position (a flat op on spatial features, a
                // pool after flattening), and dropout, which evaluation skips.
                HeadOp::Pool(_) | HeadOp::Flatten | HeadOp::BatchNorm(_) | HeadOp::Relu | HeadOp::Linear(_) | HeadOp::Dropout(_) => {}
            }
        }
        if !flat {
            x = self.op("Flatten", &[&x], vec![int("axis", 1)]);
        }
        x
    }
}

fn node(op_type: &str, inputs: &[&str], output: &str, attributes: Vec<AttributeProto>) -> NodeProto {
    let mut node = NodeProto::new();
    node.op_type = op_type.to_string();
    node.name = output.to_string();
    node.input = inputs.iter().map(|input| input.to_string()).collect();
    node.output = vec![output.to_string()];
    node.attribute = attributes;
    node
}

/// ONNX's `pads` are `[top, left, bottom, right]`, the order of burn's `Explicit`.
fn padding(padding: &PaddingConfig2d) -> AttributeProto {
    match *padding {
        PaddingConfig2d::Explicit(top, left, bottom, right) => ints("pads", &[top as i64, left as i64, bottom as i64, right as i64]),
        PaddingConfig2d::Valid => ints("pads", &[0; 4]),
        PaddingConfig2d::Same => {
            let mut attribute = AttributeProto::new();
            attribute.name = "auto_pad".to_string();
            attribute.type_ = AttributeType::STRING.into();
            attribute.s = b"SAME_UPPER".to_vec();
            attribute
        }
    }
}

fn ints(name: &str, values: &[i64]) -> AttributeProto {
    let mut attribute = AttributeProto::new();
    attribute.name = name.to_string();
    attribute.type_ = AttributeType::INTS.into();
    attribute.ints = values.to_vec();
    attribute
}

fn int(name: &str, value: i64) -> AttributeProto {
    let mut attribute = AttributeProto::new();
    attribute.name = name.to_string();
    attribute.type_ = AttributeType::INT.into();
    attribute.i = value;
    attribute
}

fn float(name: &str, value: f32) -> AttributeProto {
    let mut attribute = AttributeProto::new();
    attribute.name = name.to_string();
    attribute.type_ = AttributeType::FLOAT.into();
    attribute.f = value;
    attribute
}

fn entry(key: &str, value: &str) -> StringStringEntryProto {
    let mut entry = StringStringEntryProto::new();
    entry.key = key.to_string();
    entry.value = value.to_string();
    entry
}

/// A float32 tensor's name, shape (`None`: the dynamic batch axis, named `batch`) and doc.
fn value_info(name: &str, dims: &[Option<i64>], doc: &str) -> ValueInfoProto {
    let mut shape = TensorShapeProto::new();
    shape.dim = dims
        .iter()
        .map(|dim| {
            let mut dimension = Dimension::new();
            match dim {
                Some(value) => dimension.set_dim_value(*value),
                None => dimension.set_dim_param("batch".to_string()),
            }
            dimension
        })
        .collect();
    let mut tensor = type_proto::Tensor::new();
    tensor.elem_type = DataType::FLOAT as i32;
    tensor.shape = Some(shape).into();
    let mut value_type = TypeProto::new();
    value_type.set_tensor_type(tensor);
    let mut info = ValueInfoProto::new();
    info.name = name.to_string();
    info.type_ = Some(value_type).into();
    info.doc_string = doc.to_string();
    info
}
