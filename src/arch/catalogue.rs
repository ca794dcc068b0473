//! The built-in architectures by name: what `backbone NAME` can say and what the runtime builds.

use std::sync::LazyLock;

use super::architecture::Architecture;

static ARCHITECTURES: LazyLock<Vec<Architecture>> = LazyLock::new(super::resnet::all);

pub fn lookup(name: &str) -> Option<&'static Architecture> {
    ARCHITECTURES.iter().find(|architecture| architecture.name == name)
}

pub fn names() -> impl Iterator<Item = &'static str> + Clone {
    ARCHITECTURES.iter().map(|architecture| architecture.name)
}
