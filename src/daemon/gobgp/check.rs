//! `gobgpd -d -f FILE` checks gobgpd.toml (the schema only: an invalid router ID passes it and
//! fails at start); routes.txt is checked by bgpgen's own parser.

use std::path::{Path, PathBuf};

use crate::daemon::validate::{ValidateError, program_path, run};
use crate::render::Rendered;
use crate::routes_file;

pub fn checker() -> (PathBuf, &'static str) {
    (program_path("BGPGEN_GOBGPD", "/usr/bin/gobgpd"), "gobgpd")
}

pub fn check(dir: &Path, rendered: &Rendered) -> Result<(), ValidateError> {
    let (program, _) = checker();
    let path = dir.join("gobgpd.toml");
    let (ok, out, _) = run(&program, &["-d".as_ref(), "-f".as_ref(), path.as_os_str()])?;
    if !ok {
        return Err(ValidateError::rejected(&program, "gobgpd.toml", out));
    }
    if let Some(routes) = rendered.file("routes.txt") {
        routes_file::parse(routes).map_err(|e| {
            ValidateError::rejected(Path::new("bgpgen"), "routes.txt", e.to_string())
        })?;
    }
    Ok(())
}
