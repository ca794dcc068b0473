//! Diagnostics as plain data: what went wrong, where, and what to do. Rendering lives in `render`.

mod code;
mod diagnostic;
mod suggest;

pub use code::{Code, Severity};
pub use diagnostic::{Diagnostic, Label};
pub use suggest::did_you_mean;
