//! `bird -p -c FILE` parses bird.conf.

use std::path::{Path, PathBuf};

use crate::daemon::validate::{ValidateError, program_path, run};
use crate::render::Rendered;

pub fn checker() -> (PathBuf, &'static str) {
    (program_path("BGPGEN_BIRD", "/usr/sbin/bird"), "bird2")
}

pub fn check(dir: &Path, _rendered: &Rendered) -> Result<(), ValidateError> {
    let (program, _) = checker();
    // BIRD resolves a relative -c against its start directory: always pass it absolute.
    let path = std::path::absolute(dir.join("bird.conf"))?;
    let (ok, out, _) = run(&program, &["-p".as_ref(), "-c".as_ref(), path.as_os_str()])?;
    if !ok {
        return Err(ValidateError::rejected(&program, "bird.conf", out));
    }
    Ok(())
}
