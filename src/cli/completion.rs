//! `bgpgen completion SHELL` and the hidden `bgpgen man DIR`: both generated from the clap
//! definitions at run time, so they always match `--help`.
//!
//! Man pages are a (hidden) subcommand rather than a build step: a build script cannot see the
//! binary's clap definitions without moving them into a shared file, and writing outside
//! `OUT_DIR` from a build is frowned upon; `bgpgen man DIR` is what a package build runs
//! (`bgpgen man debian/tmp/usr/share/man/man1`).

use std::path::Path;

use clap::CommandFactory;

use crate::{Cli, Failure};

pub fn completion(shell: clap_complete::Shell) -> Result<(), Failure> {
    let mut cmd = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut cmd, "bgpgen", &mut out);
    use std::io::Write as _;
    match std::io::stdout().write_all(&out) {
        // `bgpgen completion bash | head`: the reader has what it wanted.
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        r => r.map_err(|e| Failure::invalid(format!("writing the completion script: {e}"))),
    }
}

/// Writes `bgpgen.1` and `bgpgen-SUBCOMMAND.1` for each visible subcommand into `dir`.
pub fn man(dir: &Path) -> Result<(), Failure> {
    bgpgen::output::create_dir(dir)
        .map_err(|e| Failure::invalid(format!("cannot create {}: {e}", crate::escape_path(dir))))?;
    let mut cmd = Cli::command().disable_help_subcommand(true);
    cmd.build();
    let mut written = Vec::new();
    page(&cmd, dir, &mut written)?;
    for path in &written {
        println!("{}", path.display());
    }
    Ok(())
}

fn page(
    cmd: &clap::Command,
    dir: &Path,
    written: &mut Vec<std::path::PathBuf>,
) -> Result<(), Failure> {
    for sub in cmd.get_subcommands().filter(|s| !s.is_hide_set()) {
        page(sub, dir, written)?;
    }
    let man = clap_mangen::Man::new(cmd.clone());
    let mut text = Vec::new();
    man.render(&mut text)
        .map_err(|e| Failure::invalid(format!("rendering the man page: {e}")))?;
    let path = dir.join(man.get_filename());
    let text = String::from_utf8_lossy(&text);
    // Writes never follow a link they did not create (docs/design.md section 9).
    bgpgen::output::write_atomic(&path, &text, false).map_err(|e| {
        Failure::invalid(format!("cannot write {}: {e}", crate::escape_path(&path)))
    })?;
    written.push(path);
    Ok(())
}
