//! `bgpgen diff`: two inputs, each with its own speaker options (`--from-options`,
//! `--to-options`; `--options` for both), compared for one backend.
//!
//! Exit codes: 0 the same, 1 different, 2 invalid input or options (on either side).

use std::collections::BTreeMap;

use bgpgen::diagnostic::{Diagnostic, Level};
use bgpgen::intent::Intent;
use bgpgen::render::Rendered;
use bgpgen::text::escape;

use super::output::{Format, quiet};
use crate::{DiffArgs, EXIT_DIFFERENT, Failure, compile_from, render_with};

pub fn run(args: DiffArgs) -> Result<(), Failure> {
    let show = args.backend.show_secrets;
    let side = |name: &str, paths: &[std::path::PathBuf], options: Option<&std::path::Path>| {
        let options = options.or(args.options.as_deref());
        let (_, _, intent) = compile_from(paths, options, &args.speaker, args.limits)
            .map_err(|f| in_side(name, f))?;
        let rendered = render_with(&intent, &args.backend, show).map_err(|f| in_side(name, f))?;
        Ok::<(Intent, Rendered), Failure>((intent, rendered))
    };
    let (from, a) = side("--from", &args.from, args.from_options.as_deref())?;
    let (to, b) = side("--to", &args.to, args.to_options.as_deref())?;
    print_diagnostics_once(
        from.diagnostics.iter().chain(&a.notes),
        to.diagnostics.iter().chain(&b.notes),
    );
    let d = bgpgen::diff::diff(&from, &to, &a, &b, show);
    match args.output {
        Format::Json => {
            let mut text = serde_json::to_string_pretty(&d).unwrap_or_default();
            text.push('\n');
            print!("{text}");
        }
        Format::Yaml => print!("{}", bgpgen::source::yaml::to_string(&d)),
        Format::Text => print!("{}", d.to_text()),
    }
    if d.changed {
        // The report says what differs; the exit code says that something does (as diff(1)).
        return Err(Failure {
            code: EXIT_DIFFERENT,
            message: String::new(),
        });
    }
    Ok(())
}

/// A failure of one side, saying which.
fn in_side(name: &str, f: Failure) -> Failure {
    Failure {
        code: f.code,
        message: format!("{name}: {}", f.message),
    }
}

/// Each diagnostic once, with the sides that have it: `warning [from, to]: Pod/x: ...`.
fn print_diagnostics_once<'a>(
    from: impl Iterator<Item = &'a Diagnostic>,
    to: impl Iterator<Item = &'a Diagnostic>,
) {
    let mut sides: BTreeMap<&Diagnostic, (bool, bool)> = BTreeMap::new();
    for d in from {
        sides.entry(d).or_default().0 = true;
    }
    for d in to {
        sides.entry(d).or_default().1 = true;
    }
    for (d, (f, t)) in sides {
        if quiet() && d.level != Level::Error {
            continue;
        }
        let which = match (f, t) {
            (true, true) => "from, to",
            (true, false) => "from",
            _ => "to",
        };
        eprintln!(
            "{} [{which}]: {}: {}",
            d.level,
            escape(&d.object),
            escape(&d.message)
        );
    }
}
