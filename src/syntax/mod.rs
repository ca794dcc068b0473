//! Text to AST. Never fails: returns the tree of what parsed and a diagnostic per syntax error.

pub mod ast;
pub mod edit;
mod familiar_mistakes;
mod grammar;
mod lookalike;
mod lower;
mod parser;
mod syntax_error;

pub use parser::parse;
