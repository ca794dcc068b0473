//! The pest parser generated from grammar/recipe.pest.

#[derive(pest_derive::Parser)]
#[grammar = "../grammar/recipe.pest"]
pub struct RecipeGrammar;
