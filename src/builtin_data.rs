//! The catalogue of built-in synthetic data sets: names and classes, for the checker (names, class
//! counts) and the runtime (which draws them, in `data::synthetic`).

pub struct BuiltinDataset {
    pub name: &'static str,
    pub summary: &'static str,
    pub classes: &'static [&'static str],
}

pub const BUILTIN_DATASETS: &[BuiltinDataset] = &[
    BuiltinDataset {
        name: "shapes-source",
        summary: "ten single shapes and textures on varied backgrounds: the pretraining task",
        classes: &[
            "circle",
            "square",
            "triangle",
            "plus",
            "ring",
            "star",
            "horizontal-stripes",
            "vertical-stripes",
            "diagonal-line",
            "two-dots",
        ],
    },
    BuiltinDataset {
        name: "shapes-target",
        summary: "five compositions of the same primitives: the few-shot transfer task",
        classes: &["circle-in-square", "two-circles", "l-shape", "checker", "arrow"],
    },
];

pub fn lookup(name: &str) -> Option<&'static BuiltinDataset> {
    BUILTIN_DATASETS.iter().find(|dataset| dataset.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    BUILTIN_DATASETS.iter().map(|dataset| dataset.name)
}
