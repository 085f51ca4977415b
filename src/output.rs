//! Writing rendered files: atomically (temp file in the same directory + rename), keeping the
//! previous version as `<name>.prev`, and 0600 when the file holds a secret.

use std::io::Write as _;
use std::path::Path;

/// Writes `contents` to `path` atomically. Readers see the old or the new file, never half.
pub fn write_atomic(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut tmp = tempfile::Builder::new()
        .prefix(".bgpgen-")
        .permissions(std::os::unix::fs::PermissionsExt::from_mode(if secret {
            0o600
        } else {
            0o644
        }))
        .tempfile_in(dir)?;
    tmp.write_all(contents.as_bytes())?;
    tmp.as_file().sync_all()?;
    if path.exists() {
        let mut prev = path.as_os_str().to_owned();
        prev.push(".prev");
        std::fs::copy(path, &prev)?;
        if secret {
            std::fs::set_permissions(&prev, std::os::unix::fs::PermissionsExt::from_mode(0o600))?;
        }
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}
