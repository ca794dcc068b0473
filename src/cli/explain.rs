use crate::diagnostics::{Code, did_you_mean};

pub fn run(code: &str) -> u8 {
    match Code::parse(code) {
        Some(code) => {
            print!("{}", code.documentation());
            0
        }
        None => {
            let known: Vec<&str> = Code::ALL.iter().map(|code| code.as_str()).collect();
            let hint = match did_you_mean(&code.to_ascii_uppercase(), known.iter().copied()) {
                Some(best) => format!(" (did you mean {best}?)"),
                None => String::new(),
            };
            super::output::usage_error(format!("no diagnostic code `{code}`{hint}; codes run from {} to {}", known[0], known[known.len() - 1]))
        }
    }
}
