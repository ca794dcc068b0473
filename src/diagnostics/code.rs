use serde::{Serialize, Serializer};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Warning,
    Error,
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $title:literal; )*) => {
        /// Every diagnostic tlrun can emit. Codes are never reused once retired.
        /// TL0xxx syntax, TL1xxx names, TL2xxx values, TL3xxx recipe graph, TL4xxx runtime and IO,
        /// TL5xxx warnings about transfer-learning traps.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// The stable `TLxxxx` identifier.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }

            /// A short kebab-case name, shown next to the code.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }

            /// The page `tlrun explain CODE` prints: docs/diagnostics/TLxxxx.md, compiled in.
            pub fn documentation(self) -> &'static str {
                match self {
                    $( Code::$variant => include_str!(concat!("../../docs/diagnostics/", $code, ".md")), )*
                }
            }
        }
    };
}

codes! {
    SyntaxError = "TL0001", Error, "syntax-error";
    UnknownArchitecture = "TL1001", Error, "unknown-architecture";
    UnknownLayer = "TL1002", Error, "unknown-layer";
    UnknownGroup = "TL1003", Error, "unknown-group";
    UnknownZooEntry = "TL1004", Error, "unknown-zoo-entry";
    DuplicateName = "TL1005", Error, "duplicate-name";
    DuplicateStatement = "TL1006", Error, "duplicate-statement";
    MissingStatement = "TL1007", Error, "missing-statement";
    GroupRemovedByCut = "TL1008", Error, "group-removed-by-cut";
    OverlappingGroups = "TL1009", Error, "overlapping-groups";
    UngroupedLayer = "TL1010", Error, "ungrouped-layer";
    ZooArchitectureMismatch = "TL1011", Error, "zoo-architecture-mismatch";
    UnknownDataset = "TL1012", Error, "unknown-dataset";
    GroupWithoutWeights = "TL1013", Error, "group-without-weights";
    UnknownStage = "TL1014", Error, "unknown-stage";
    ZeroEpochs = "TL2001", Error, "zero-epochs";
    NonPositiveRate = "TL2002", Error, "non-positive-rate";
    BadResizeSteps = "TL2003", Error, "bad-resize-steps";
    TooManyResizeSteps = "TL2004", Error, "too-many-resize-steps";
    StageTrainsNothing = "TL2005", Error, "stage-trains-nothing";
    HeadWidthMismatch = "TL2006", Error, "head-width-mismatch";
    ValueOutOfRange = "TL2007", Error, "value-out-of-range";
    InvalidHead = "TL2008", Error, "invalid-head";
    ConflictingTraining = "TL2009", Error, "conflicting-training";
    TooManyVariants = "TL2010", Error, "too-many-variants";
    BatchOfOne = "TL2011", Error, "batch-of-one";
    LwfWithoutClassifier = "TL2012", Error, "lwf-without-classifier";
    RecipeCycle = "TL3001", Error, "recipe-cycle";
    MissingRecipeInput = "TL3002", Error, "missing-recipe-input";
    DataFolderMissing = "TL4001", Error, "data-folder-missing";
    EmptyClass = "TL4002", Error, "empty-class";
    CorruptImage = "TL4003", Error, "corrupt-image";
    ClassMissingFromValid = "TL4004", Error, "class-missing-from-valid";
    NonFiniteLoss = "TL4005", Error, "non-finite-loss";
    WeightsMismatch = "TL4006", Error, "weights-mismatch";
    DeviceUnavailable = "TL4007", Error, "device-unavailable";
    RunFolderUnwritable = "TL4008", Error, "run-folder-unwritable";
    RunFolderUnreadable = "TL4009", Error, "run-folder-unreadable";
    Interrupted = "TL4010", Error, "interrupted";
    RecipeChanged = "TL4011", Error, "recipe-changed";
    StepFailed = "TL4012", Error, "step-failed";
    UnreadableRecipe = "TL4013", Error, "unreadable-recipe";
    ModelCardUnusable = "TL4014", Error, "model-card-unusable";
    PredictInputUnusable = "TL4015", Error, "predict-input-unusable";
    StatsMismatch = "TL5001", Warning, "stats-mismatch";
    ResizeBelowPretraining = "TL5002", Warning, "resize-below-pretraining";
    FullRateUnfreeze = "TL5003", Warning, "full-rate-unfreeze";
    UnfreezeBeforeHeadWarmup = "TL5004", Warning, "unfreeze-before-head-warmup";
    DomainShift = "TL5005", Warning, "domain-shift";
    FewStepsPerEpoch = "TL5006", Warning, "few-steps-per-epoch";
    FewShotUnswept = "TL5007", Warning, "few-shot-unswept";
}

impl Code {
    pub fn parse(text: &str) -> Option<Code> {
        let wanted = text.trim().to_ascii_uppercase();
        Code::ALL.iter().copied().find(|code| code.as_str() == wanted)
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Code {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}
