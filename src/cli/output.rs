//! What every command prints besides its document: diagnostics and one-line summaries on
//! stderr (silenced below error by `-q`), and the `-o` formats.
//!
//! The rule: stdout carries only the document a command produces (the intent, the rendered
//! files, the diff, the explanation, completions), so it can be piped; what the command did is
//! said on stderr.

use std::sync::atomic::{AtomicBool, Ordering};

use bgpgen::diagnostic::{Diagnostic, Level};

static QUIET: AtomicBool = AtomicBool::new(false);

pub fn set_quiet(quiet: bool) {
    QUIET.store(quiet, Ordering::Relaxed);
}

pub fn quiet() -> bool {
    QUIET.load(Ordering::Relaxed)
}

/// Diagnostics on stderr, one per line (`warning: Pod/default/x: ...`); with `-q` only errors.
pub fn print_diagnostics(diagnostics: &[Diagnostic]) {
    for d in diagnostics {
        if !quiet() || d.level == Level::Error {
            eprintln!("{d}");
        }
    }
}

/// A one-line summary of what a command did, on stderr (not with `-q`).
pub fn summary(line: impl std::fmt::Display) {
    if !quiet() {
        eprintln!("{}", bgpgen::text::escape(&line.to_string()));
    }
}

/// The formats of a command's `-o`. Each command accepts its own subset; the error for another
/// value (kubectl's `wide`, `name`, `jsonpath=...`) says which ones it has.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Yaml,
    Json,
}

impl Format {
    fn name(self) -> &'static str {
        match self {
            Format::Text => "text",
            Format::Yaml => "yaml",
            Format::Json => "json",
        }
    }
}

/// A value parser for `-o` accepting `allowed`; `what` names what the command prints.
pub fn format_parser(
    allowed: &'static [Format],
    what: &'static str,
) -> impl Fn(&str) -> Result<Format, String> + Clone + Send + Sync + 'static {
    move |s: &str| {
        let wanted = s.trim().to_ascii_lowercase();
        if let Some(f) = allowed.iter().find(|f| f.name() == wanted) {
            return Ok(*f);
        }
        let names: Vec<&str> = allowed.iter().map(|f| f.name()).collect();
        let table = matches!(wanted.as_str(), "wide" | "table" | "name")
            || wanted.starts_with("jsonpath")
            || wanted.starts_with("custom-columns")
            || wanted.starts_with("go-template");
        Err(if table {
            format!(
                "this command prints {what}, not a table; its formats are {}",
                names.join(", ")
            )
        } else {
            format!("formats: {}", names.join(", "))
        })
    }
}
