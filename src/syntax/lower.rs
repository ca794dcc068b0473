//! pest pairs to AST nodes. The grammar guarantees the shapes matched here, so the `expect`s below
//! state grammar invariants, not assumptions about user input. Every match names the rules it
//! lowers; a rule it does not know is an internal-error diagnostic (`unlowered`), never a silent
//! fallback to some other statement.

use pest::iterators::Pair;

use super::ast::*;
use super::grammar::Rule;
use crate::diagnostics::{Code, Diagnostic};
use crate::span::{Span, Spanned};

const GRAMMAR: &str = "the grammar guarantees this child";

/// Turns pairs into nodes, shifting spans by where the item started in the whole file.
struct Lowerer {
    offset: usize,
    diagnostics: Vec<Diagnostic>,
}

pub fn lower_item(pair: Pair<'_, Rule>, offset: usize) -> (Option<Item>, Vec<Diagnostic>) {
    let mut lowerer = Lowerer { offset, diagnostics: Vec::new() };
    let item = lowerer.item(pair);
    (item, lowerer.diagnostics)
}

impl Lowerer {
    /// A grammar rule this lowering does not know: every match names the rules it lowers, so a
    /// rule added to the grammar and forgotten here is reported, never lowered as something else.
    fn unlowered(&mut self, rule: Rule, span: Span) {
        self.diagnostics.push(
            Diagnostic::new(Code::SyntaxError, format!("internal error: the grammar rule `{rule:?}` is not lowered"))
                .at(span, "not understood")
                .with_help("please report this with the recipe"),
        );
    }

    fn span(&self, pair: &Pair<'_, Rule>) -> Span {
        let span = pair.as_span();
        Span::new(span.start() + self.offset, span.end() + self.offset)
    }

    /// The span of the leading keyword: from the pair's start to the first space.
    fn keyword_span(&self, pair: &Pair<'_, Rule>) -> Span {
        let text = pair.as_str();
        let length = text.find(|c: char| !(c.is_ascii_alphanumeric() || c == '_')).unwrap_or(text.len());
        let start = pair.as_span().start() + self.offset;
        Span::new(start, start + length)
    }

    fn string(&self, pair: Pair<'_, Rule>) -> Spanned<String> {
        let span = self.span(&pair);
        let text = pair.into_inner().next().expect(GRAMMAR).as_str();
        Spanned::new(unescape(text), span)
    }

    /// One sweep axis: its kind (with the stage it names) and its values as written.
    fn sweep_axis(&mut self, pair: Pair<'_, Rule>) -> SweepAxis {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner().peekable();
        let kind = match rule {
            Rule::sweep_seed => SweepKind::Seed,
            Rule::sweep_batch => SweepKind::Batch,
            Rule::sweep_cut => SweepKind::Cut,
            Rule::sweep_lr => SweepKind::Lr(self.name(inner.next().expect(GRAMMAR))),
            Rule::sweep_epochs => SweepKind::Epochs(self.name(inner.next().expect(GRAMMAR))),
            Rule::sweep_spread => SweepKind::Spread(self.name(inner.next().expect(GRAMMAR))),
            // Entries are strings: their values are the text between the quotes.
            Rule::sweep_zoo => return SweepAxis { span, kind: SweepKind::Zoo, values: inner.map(|value| self.string(value)).collect() },
            other => {
                self.unlowered(other, span);
                SweepKind::Seed
            }
        };
        let values = inner.map(|value| self.name(value)).collect();
        SweepAxis { span, kind, values }
    }

    fn name(&self, pair: Pair<'_, Rule>) -> Name {
        Spanned::new(pair.as_str().to_string(), self.span(&pair))
    }

    fn integer(&mut self, pair: Pair<'_, Rule>) -> Spanned<i64> {
        let span = self.span(&pair);
        let value = pair.as_str().parse::<i64>().unwrap_or_else(|_| {
            self.diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("`{}` is too large a whole number", pair.as_str()))
                    .at(span, "does not fit in 64 bits"),
            );
            i64::MAX
        });
        Spanned::new(value, span)
    }

    fn number(&mut self, pair: Pair<'_, Rule>) -> Spanned<f64> {
        let span = self.span(&pair);
        let value = pair.as_str().parse::<f64>().unwrap_or(f64::NAN);
        if !value.is_finite() {
            self.diagnostics.push(
                Diagnostic::new(Code::ValueOutOfRange, format!("`{}` is not a finite number", pair.as_str()))
                    .at(span, "too large"),
            );
        }
        Spanned::new(value, span)
    }

    fn numbers(&mut self, pair: Pair<'_, Rule>) -> Vec<Spanned<f64>> {
        pair.into_inner().map(|number| self.number(number)).collect()
    }

    fn item(&mut self, pair: Pair<'_, Rule>) -> Option<Item> {
        let span = self.span(&pair);
        let keyword = self.keyword_span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::recipe_decl => ItemKind::Recipe(self.string(inner.next().expect(GRAMMAR))),
            Rule::seed_decl => ItemKind::Seed(self.integer(inner.next().expect(GRAMMAR))),
            Rule::export_decl => ItemKind::Export(self.string(inner.next().expect(GRAMMAR))),
            Rule::publish_decl => ItemKind::Publish(self.string(inner.next().expect(GRAMMAR))),
            Rule::sweep_block => ItemKind::Sweep(inner.map(|axis| self.sweep_axis(axis)).collect()),
            Rule::predict_decl => {
                let input = self.string(inner.next().expect(GRAMMAR));
                ItemKind::Predict { input, output: self.string(inner.next().expect(GRAMMAR)) }
            }
            Rule::checkpoint_decl => ItemKind::Checkpoint(self.integer(inner.next().expect(GRAMMAR))),
            Rule::loss_decl => ItemKind::Loss(
                inner
                    .map(|option| {
                        let span = self.span(&option);
                        let value = match option.as_rule() {
                            Rule::loss_smoothing => LossOption::Smoothing(self.number(option.into_inner().next().expect(GRAMMAR)).value),
                            Rule::loss_weights => LossOption::BalancedWeights,
                            other => {
                                self.unlowered(other, span);
                                LossOption::BalancedWeights
                            }
                        };
                        Spanned::new(value, span)
                    })
                    .collect(),
            ),
            Rule::ema_decl => ItemKind::Ema(self.number(inner.next().expect(GRAMMAR))),
            Rule::regularise_decl => ItemKind::Regularise(
                inner
                    .map(|term| {
                        let span = self.span(&term);
                        let rule = term.as_rule();
                        let numbers: Vec<Spanned<f64>> = term.into_inner().map(|number| self.number(number)).collect();
                        let mut numbers = numbers.into_iter();
                        let value = match rule {
                            Rule::l2sp_term => {
                                let alpha = numbers.next().expect(GRAMMAR);
                                Regulariser::L2Sp { alpha, beta: numbers.next().expect(GRAMMAR) }
                            }
                            Rule::bss_term => Regulariser::Bss { eta: numbers.next(), k: numbers.next() },
                            Rule::lwf_term => Regulariser::Lwf { lambda: numbers.next(), temperature: numbers.next() },
                            other => {
                                self.unlowered(other, span);
                                Regulariser::Bss { eta: None, k: None }
                            }
                        };
                        Spanned::new(value, span)
                    })
                    .collect(),
            ),
            Rule::tta_decl => ItemKind::TtaFlip,
            Rule::backbone_decl => ItemKind::Backbone(self.backbone(inner)),
            Rule::data_block => ItemKind::Data(inner.map(|statement| self.data_statement(statement)).collect()),
            Rule::cut_decl => {
                let side = match inner.next().expect(GRAMMAR).as_rule() {
                    Rule::cut_after => CutSide::After,
                    Rule::cut_before => CutSide::Before,
                    other => {
                        self.unlowered(other, span);
                        CutSide::After
                    }
                };
                ItemKind::Cut(CutDecl { side, layer: self.name(inner.next().expect(GRAMMAR)) })
            }
            Rule::head_block => ItemKind::Head(inner.map(|layer| self.head_layer(layer)).collect()),
            Rule::groups_block => ItemKind::Groups(
                inner
                    .map(|group| {
                        let mut parts = group.into_inner();
                        let name = self.name(parts.next().expect(GRAMMAR));
                        let members = parts
                            .map(|member| self.name(member.into_inner().next().expect(GRAMMAR)))
                            .collect();
                        GroupDef { name, members }
                    })
                    .collect(),
            ),
            Rule::stage_block => {
                let name = self.name(inner.next().expect(GRAMMAR));
                let statements = inner.map(|statement| self.stage_statement(statement)).collect();
                ItemKind::Stage(StageDecl { name, statements })
            }
            other => {
                self.unlowered(other, span);
                return None;
            }
        };
        Some(Item { keyword, span, kind })
    }

    fn backbone(&mut self, mut inner: pest::iterators::Pairs<'_, Rule>) -> BackboneDecl {
        let architecture = self.name(inner.next().expect(GRAMMAR));
        let mut weights = None;
        let mut stats = Vec::new();
        for part in inner {
            let part_span = self.span(&part);
            match part.as_rule() {
                Rule::weights_source => {
                    let span = self.span(&part);
                    let source = part.into_inner().next().expect(GRAMMAR);
                    let value = match source.as_rule() {
                        Rule::zoo_source => WeightsSource::Zoo(self.string(source.into_inner().next().expect(GRAMMAR))),
                        Rule::file_source => WeightsSource::File(self.string(source.into_inner().next().expect(GRAMMAR))),
                        Rule::recipe_source => {
                            WeightsSource::Recipe(self.string(source.into_inner().next().expect(GRAMMAR)))
                        }
                        Rule::no_weights => WeightsSource::None,
                        other => {
                            self.unlowered(other, span);
                            WeightsSource::None
                        }
                    };
                    weights = Some(Spanned::new(value, span));
                }
                Rule::stats_block => {
                    for stat in part.into_inner() {
                        stats.push(self.stat(stat));
                    }
                }
                other => self.unlowered(other, part_span),
            }
        }
        BackboneDecl { architecture, weights, stats }
    }

    fn stat(&mut self, pair: Pair<'_, Rule>) -> Spanned<Stat> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let stat = match rule {
            Rule::mean_stat => Stat::Mean(self.numbers(pair)),
            Rule::std_stat => Stat::Std(self.numbers(pair)),
            Rule::size_stat => Stat::Size(self.integer(pair.into_inner().next().expect(GRAMMAR))),
            Rule::channels_stat => Stat::Channels(self.integer(pair.into_inner().next().expect(GRAMMAR))),
            other => {
                self.unlowered(other, span);
                Stat::Size(Spanned::new(0, span))
            }
        };
        Spanned::new(stat, span)
    }

    fn data_statement(&mut self, pair: Pair<'_, Rule>) -> DataStatement {
        let span = self.span(&pair);
        let keyword = self.keyword_span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::train_folder => DataKind::Train(self.data_source(inner.next().expect(GRAMMAR))),
            Rule::valid_folder => DataKind::Valid(self.data_source(inner.next().expect(GRAMMAR))),
            Rule::valid_every => DataKind::ValidEvery(match inner.next() {
                Some(pair) if pair.as_rule() == Rule::every_stage => ValidSchedule::Stage,
                Some(pair) => ValidSchedule::Epochs(self.integer(pair)),
                None => ValidSchedule::Stage,
            }),
            Rule::valid_last => DataKind::ValidEvery(ValidSchedule::Last),
            Rule::source_folder => DataKind::Source(self.data_source(inner.next().expect(GRAMMAR))),
            Rule::valid_split => {
                let fraction = self.number(inner.next().expect(GRAMMAR));
                let seed = inner.next().map(|seed| self.integer(seed));
                DataKind::ValidSplit { fraction, seed }
            }
            Rule::batch_stmt => DataKind::Batch(self.integer(inner.next().expect(GRAMMAR))),
            Rule::data_channels => DataKind::Channels(self.integer(inner.next().expect(GRAMMAR)), inner.next().is_some()),
            Rule::size_stat => DataKind::Size(self.integer(inner.next().expect(GRAMMAR))),
            Rule::normalize_stmt => {
                let choice = inner.next().expect(GRAMMAR);
                DataKind::Normalize(match choice.as_rule() {
                    Rule::normalize_backbone => Normalization::Backbone,
                    Rule::normalize_imagenet => Normalization::Imagenet,
                    Rule::normalize_explicit => {
                        let mut stats = choice.into_inner();
                        let mean = self.numbers(stats.next().expect(GRAMMAR));
                        let std = self.numbers(stats.next().expect(GRAMMAR));
                        Normalization::Explicit { mean, std }
                    }
                    other => {
                        self.unlowered(other, span);
                        Normalization::Backbone
                    }
                })
            }
            Rule::augment_stmt => DataKind::Augment(
                inner
                    .map(|augmentation| {
                        let span = self.span(&augmentation);
                        let value = match augmentation.as_rule() {
                            Rule::flip_aug => Augmentation::Flip,
                            Rule::crop_aug => {
                                Augmentation::Crop(self.integer(augmentation.into_inner().next().expect(GRAMMAR)).value)
                            }
                            Rule::rotate_aug | Rule::zoom_aug | Rule::lighting_aug | Rule::warp_aug | Rule::mixup_aug | Rule::cutmix_aug => {
                                let rule = augmentation.as_rule();
                                let amount = augmentation.into_inner().next().map(|number| self.number(number).value);
                                match rule {
                                    Rule::rotate_aug => Augmentation::Rotate(amount),
                                    Rule::zoom_aug => Augmentation::Zoom(amount),
                                    Rule::lighting_aug => Augmentation::Lighting(amount),
                                    Rule::mixup_aug => Augmentation::Mixup(amount),
                                    Rule::cutmix_aug => Augmentation::Cutmix(amount),
                                    _ => Augmentation::Warp(amount),
                                }
                            }
                            Rule::no_aug => Augmentation::None,
                            other => {
                                self.unlowered(other, span);
                                Augmentation::None
                            }
                        };
                        Spanned::new(value, span)
                    })
                    .collect(),
            ),
            Rule::resize_method_stmt => DataKind::ResizeMethod(match inner.next().expect(GRAMMAR).as_rule() {
                Rule::method_squash => ResizeMethod::Squash,
                Rule::method_pad => ResizeMethod::Pad,
                Rule::method_crop => ResizeMethod::Crop,
                other => {
                    self.unlowered(other, span);
                    ResizeMethod::Crop
                }
            }),
            Rule::corrupt_stmt => DataKind::Corrupt(match inner.next().expect(GRAMMAR).as_rule() {
                Rule::corrupt_skip => CorruptPolicy::Skip,
                Rule::corrupt_fail => CorruptPolicy::Fail,
                other => {
                    self.unlowered(other, span);
                    CorruptPolicy::Fail
                }
            }),
            other => {
                self.unlowered(other, span);
                DataKind::Corrupt(CorruptPolicy::Fail)
            }
        };
        DataStatement { keyword, span, kind }
    }

    fn data_source(&mut self, pair: Pair<'_, Rule>) -> DataSourceDecl {
        match pair.as_rule() {
            Rule::synthetic_source => {
                let mut parts = pair.into_inner();
                let task = self.string(parts.next().expect(GRAMMAR));
                let per_class = self.integer(parts.next().expect(GRAMMAR));
                let seed = parts.next().map(|seed| self.integer(seed));
                DataSourceDecl::Synthetic { task, per_class, seed }
            }
            Rule::string => DataSourceDecl::Folder(self.string(pair)),
            other => {
                let span = self.span(&pair);
                self.unlowered(other, span);
                DataSourceDecl::Folder(Spanned::new(String::new(), span))
            }
        }
    }

    fn head_layer(&mut self, pair: Pair<'_, Rule>) -> Spanned<HeadLayer> {
        let span = self.span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let layer = match rule {
            Rule::pool_layer => HeadLayer::Pool(match inner.next().expect(GRAMMAR).as_rule() {
                Rule::pool_avg => Pool::Avg,
                Rule::pool_max => Pool::Max,
                Rule::pool_concat => Pool::Concat,
                other => {
                    self.unlowered(other, span);
                    Pool::Avg
                }
            }),
            Rule::dropout_layer => HeadLayer::Dropout(self.number(inner.next().expect(GRAMMAR))),
            Rule::batchnorm_layer => HeadLayer::BatchNorm,
            Rule::relu_layer => HeadLayer::Relu,
            Rule::linear_layer => {
                let width = inner.next().expect(GRAMMAR);
                HeadLayer::Linear(match width.as_rule() {
                    Rule::linear_classes => LinearWidth::Classes,
                    Rule::integer => LinearWidth::Fixed(self.integer(width).value),
                    other => {
                        self.unlowered(other, span);
                        LinearWidth::Classes
                    }
                })
            }
            other => {
                self.unlowered(other, span);
                HeadLayer::Relu
            }
        };
        Spanned::new(layer, span)
    }

    fn multiplier_map(&mut self, pair: Pair<'_, Rule>) -> Vec<(Name, Spanned<f64>)> {
        pair.into_inner()
            .map(|entry| {
                let mut parts = entry.into_inner();
                let group = self.name(parts.next().expect(GRAMMAR));
                let value = self.number(parts.next().expect(GRAMMAR));
                (group, value)
            })
            .collect()
    }

    fn group_list(&self, pair: Pair<'_, Rule>) -> Vec<Name> {
        pair.into_inner().map(|name| self.name(name)).collect()
    }

    fn stage_statement(&mut self, pair: Pair<'_, Rule>) -> StageStatement {
        let span = self.span(&pair);
        let keyword = self.keyword_span(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::train_stmt => {
                let target = inner.next().expect(GRAMMAR);
                StageKind::Train(match target.as_rule() {
                    Rule::train_all => TrainTarget::All,
                    Rule::train_from => TrainTarget::From(self.name(target.into_inner().next().expect(GRAMMAR))),
                    Rule::group_list => TrainTarget::Groups(self.group_list(target)),
                    other => {
                        self.unlowered(other, span);
                        TrainTarget::All
                    }
                })
            }
            Rule::freeze_stmt => StageKind::Freeze(self.group_list(inner.next().expect(GRAMMAR))),
            Rule::epochs_stmt => StageKind::Epochs(self.integer(inner.next().expect(GRAMMAR))),
            Rule::lr_stmt => {
                let rate = self.number(inner.next().expect(GRAMMAR));
                let mut spread = None;
                let mut multipliers = None;
                if let Some(extra) = inner.next() {
                    match extra.as_rule() {
                        Rule::spread_clause => spread = Some(self.number(extra.into_inner().next().expect(GRAMMAR))),
                        Rule::multiplier_map => multipliers = Some(self.multiplier_map(extra)),
                        other => self.unlowered(other, span),
                    }
                }
                StageKind::Lr { rate, spread, multipliers }
            }
            Rule::spread_stmt => {
                let clause = inner.next().expect(GRAMMAR);
                StageKind::Spread(self.number(clause.into_inner().next().expect(GRAMMAR)))
            }
            Rule::multipliers_stmt => StageKind::Multipliers(self.multiplier_map(inner.next().expect(GRAMMAR))),
            Rule::optimizer_stmt => {
                let kind = match inner.next().expect(GRAMMAR).as_rule() {
                    Rule::opt_sgd => OptimizerKind::Sgd,
                    Rule::opt_adamw => OptimizerKind::Adamw,
                    other => {
                        self.unlowered(other, span);
                        OptimizerKind::Adamw
                    }
                };
                let params = inner
                    .map(|param| {
                        let span = self.span(&param);
                        let rule = param.as_rule();
                        let values: Vec<f64> = param.into_inner().map(|number| self.number(number).value).collect();
                        let value = match rule {
                            Rule::opt_wd => OptimizerParam::WeightDecay(values[0]),
                            Rule::opt_momentum => OptimizerParam::Momentum(values[0]),
                            Rule::opt_betas => OptimizerParam::Betas(values[0], values[1]),
                            Rule::opt_wd_bn_bias => OptimizerParam::DecayBatchNormAndBias,
                            Rule::opt_eps => OptimizerParam::Eps(values[0]),
                            other => {
                                self.unlowered(other, span);
                                OptimizerParam::DecayBatchNormAndBias
                            }
                        };
                        Spanned::new(value, span)
                    })
                    .collect();
                StageKind::Optimizer { kind, params }
            }
            Rule::schedule_stmt => {
                let choice = inner.next().expect(GRAMMAR);
                match choice.as_rule() {
                    Rule::sched_onecycle => {
                        let params = choice
                            .into_inner()
                            .map(|param| {
                                let span = self.span(&param);
                                let rule = param.as_rule();
                                let values: Vec<f64> = param.into_inner().map(|number| self.number(number).value).collect();
                                let value = match rule {
                                    Rule::oc_pct => OneCycleParam::Pct(values[0]),
                                    Rule::oc_div => OneCycleParam::Div(values[0]),
                                    Rule::oc_div_final => OneCycleParam::FinalDiv(values[0]),
                                    Rule::oc_moms => OneCycleParam::Moms(values[0], values[1], values[2]),
                                    other => {
                                        self.unlowered(other, span);
                                        OneCycleParam::Pct(0.25)
                                    }
                                };
                                Spanned::new(value, span)
                            })
                            .collect();
                        StageKind::Schedule(ScheduleKind::Onecycle, params)
                    }
                    Rule::sched_cosine => StageKind::Schedule(ScheduleKind::Cosine, Vec::new()),
                    Rule::sched_constant => StageKind::Schedule(ScheduleKind::Constant, Vec::new()),
                    other => {
                        self.unlowered(other, span);
                        StageKind::Schedule(ScheduleKind::Onecycle, Vec::new())
                    }
                }
            }
            Rule::accumulate_stmt => StageKind::Accumulate(self.integer(inner.next().expect(GRAMMAR))),
            Rule::keep_stmt => StageKind::KeepBest(inner.next().map(|metric| match metric.as_rule() {
                Rule::metric_loss => Metric::ValidLoss,
                Rule::metric_accuracy => Metric::ValidAccuracy,
                other => {
                    self.unlowered(other, span);
                    Metric::ValidAccuracy
                }
            })),
            Rule::stop_stmt => {
                let patience = self.integer(inner.next().expect(GRAMMAR));
                let min_delta = inner.next().map(|delta| self.number(delta));
                StageKind::StopAfter { patience, min_delta }
            }
            Rule::resize_stmt => {
                let mut sizes = Vec::new();
                let mut starts = Vec::new();
                for part in inner {
                    match part.as_rule() {
                        Rule::integer => sizes.push(self.integer(part)),
                        Rule::resize_starts => starts = part.into_inner().map(|start| self.integer(start)).collect(),
                        other => self.unlowered(other, span),
                    }
                }
                StageKind::Resize { sizes, starts }
            }
            Rule::bn_stmt => StageKind::BatchNorm(match inner.next().expect(GRAMMAR).as_rule() {
                Rule::bn_frozen => BatchNormMode::Frozen,
                Rule::bn_train => BatchNormMode::Train,
                other => {
                    self.unlowered(other, span);
                    BatchNormMode::Frozen
                }
            }),
            other => {
                self.unlowered(other, span);
                StageKind::Epochs(Spanned::new(1, span))
            }
        };
        StageStatement { keyword, span, kind }
    }
}

fn unescape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            match chars.next() {
                Some('n') => out.push('\n'),
                Some('t') => out.push('\t'),
                Some(other) => out.push(other),
                None => {}
            }
        } else {
            out.push(c);
        }
    }
    out
}
