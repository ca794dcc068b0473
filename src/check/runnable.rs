//! The typed gate between checking and running (ruff's `Parsed::as_result`): a `Runnable` is a
//! recipe whose check found no error, and the runtime's entry points take nothing else.

use std::ops::Deref;

use super::recipe::Recipe;
use crate::diagnostics::Diagnostic;

/// A checked recipe without errors. Made only by `Runnable::new`.
#[derive(Debug, Clone, PartialEq)]
pub struct Runnable(Recipe);

impl Runnable {
    /// The recipe and its warnings when no diagnostic is an error (and the checker built a
    /// recipe); otherwise every diagnostic, errors first.
    pub fn new(recipe: Option<Recipe>, diagnostics: Vec<Diagnostic>) -> Result<(Runnable, Vec<Diagnostic>), Vec<Diagnostic>> {
        match recipe {
            Some(recipe) if !diagnostics.iter().any(Diagnostic::is_error) => Ok((Runnable(recipe), diagnostics)),
            _ => {
                let mut diagnostics = diagnostics;
                diagnostics.sort_by_key(|diagnostic| !diagnostic.is_error());
                Err(diagnostics)
            }
        }
    }

    pub fn recipe(&self) -> &Recipe {
        &self.0
    }
}

impl Deref for Runnable {
    type Target = Recipe;

    fn deref(&self) -> &Recipe {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::Runnable;
    use crate::check::{NoWorld, check_source};

    #[test]
    fn only_recipes_without_errors_pass_the_gate() {
        let good = "backbone resnet_small from none\ndata { train \"x\" }\nstage s { train all }\n";
        let (recipe, diagnostics) = check_source(good, "good", &NoWorld);
        assert!(Runnable::new(recipe, diagnostics).is_ok());
        let bad = "backbone resnet_small from none\ndata { train \"x\" }\nstage s { train all epochs 0 }\n";
        let (recipe, diagnostics) = check_source(bad, "bad", &NoWorld);
        assert!(recipe.is_some(), "the checker still builds the recipe for `plan`");
        let errors = Runnable::new(recipe, diagnostics).unwrap_err();
        assert_eq!(errors[0].code.as_str(), "TL2001");
    }
}
