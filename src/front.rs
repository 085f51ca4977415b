//! The front half of the pipeline, written once for the CLI, the sidecar and the tests: the
//! speaker options of the command line layered over an options file, resolved against the
//! cluster state, compiled into the intent. Pure apart from reading the options file and the
//! password file (bounded, regular files only: [`crate::source::input`]).

use std::path::Path;

use thiserror::Error;

use crate::compile::compile;
use crate::intent::Intent;
use crate::options::{Env, OptionsError, Resolved, SpeakerArgs, SpeakerOptions, resolve};
use crate::snapshot::Snapshot;

#[derive(Debug, Error)]
pub enum FrontError {
    /// The options file could not be read (its parse errors are [`FrontError::Options`], which
    /// cite the file themselves).
    #[error("options file {path}: {message}")]
    OptionsFile { path: String, message: String },
    #[error(transparent)]
    Options(#[from] OptionsError),
}

/// The flags and environment of the command line over `options_file` (flags win, as
/// kube-ovn-speaker's pflag does with a config file). The file is read on every call: options
/// kept in Git change live in the sidecar.
pub fn layered(args: &SpeakerArgs, options_file: Option<&Path>) -> Result<SpeakerArgs, FrontError> {
    let Some(path) = options_file else {
        return Ok(args.clone());
    };
    let text =
        crate::source::input::read_options_file(path).map_err(|e| FrontError::OptionsFile {
            path: crate::text::escape(&path.display().to_string()).into_owned(),
            message: e.to_string(),
        })?;
    let from_file = SpeakerArgs::from_options_yaml(&path.display().to_string(), &text)?;
    Ok(args.clone().or(from_file))
}

/// [`resolve`] with the password file read the way every bgpgen command reads it.
pub fn resolved(
    args: &SpeakerArgs,
    env: &Env,
    snapshot: &Snapshot,
) -> Result<Resolved, OptionsError> {
    resolve(
        args,
        env,
        snapshot,
        &crate::source::input::read_password_file,
    )
}

/// Layered, resolved and compiled: the options in force and the intent.
pub fn compiled(
    snapshot: &Snapshot,
    args: &SpeakerArgs,
    options_file: Option<&Path>,
    env: &Env,
) -> Result<(SpeakerOptions, Intent), FrontError> {
    let args = layered(args, options_file)?;
    let resolved = resolved(&args, env, snapshot)?;
    let intent = compile(snapshot, &resolved.options, &resolved.diagnostics);
    Ok((resolved.options, intent))
}
