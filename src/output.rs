//! Writing rendered files (`render --out` and every daemon driver): atomically (temp file in the
//! same directory + rename), keeping the previous version as `<name>.prev`, 0600 when the file
//! holds a secret, and never through a symlink bgpgen did not create (docs/design.md section 9, "files"):
//! bgpgen runs as root, and a planted `bird.conf.prev -> /etc/shadow` in the output directory
//! used to be overwritten through (`std::fs::copy` follows symlinks).
//!
//! - the target must be a regular file or absent: a symlink, FIFO, device or directory in its
//!   place is refused, not followed or replaced;
//! - new files are created with `O_EXCL` (a temp name no one else holds) and renamed into place,
//!   and a rename replaces a name, it never writes through it;
//! - the old file is read for `.prev` through `O_NOFOLLOW | O_NONBLOCK` and checked on the
//!   descriptor, and `.prev` is itself written as a new file and renamed (a planted `.prev`
//!   symlink is replaced, its target untouched); `.prev` is never more readable than the file it
//!   copies nor than the new file.

use std::fs::File;
use std::io::{Read, Write as _};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::source::input::not_regular;

/// Mode of a rendered file without a secret, and with one.
const PUBLIC: u32 = 0o644;
const SECRET: u32 = 0o600;
/// Mode of the directories bgpgen creates: no access for others (a rendered file may hold the
/// BGP password; the daemon runs as root or in the owner's group).
const DIR_MODE: u32 = 0o750;
/// At most this much of a file bgpgen wrote is read back (100,000 routes render to a few MB).
const MAX_OWN_BYTES: u64 = 256 << 20;

fn refused(path: &Path, why: impl std::fmt::Display) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidInput,
        format!(
            "{}: {why}; bgpgen writes only regular files and never through a link",
            crate::text::escape(&path.display().to_string())
        ),
    )
}

/// Checks that `path` is a regular file (`Some`) or absent (`None`), without following a link.
fn existing_target(path: &Path) -> std::io::Result<Option<std::fs::Metadata>> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(path, "is a symbolic link")),
        Ok(m) => match not_regular(m.file_type()) {
            None => Ok(Some(m)),
            Some(what) => Err(refused(path, format!("is {what}"))),
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(e),
    }
}

/// Opens a file bgpgen wrote for reading: not through a symlink, not a FIFO (no blocking), a
/// regular file of a sane size. `None` when it does not exist.
fn open_own(path: &Path) -> std::io::Result<Option<(File, std::fs::Metadata)>> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(refused(path, "is a symbolic link"));
        }
        Err(e) => return Err(e),
    };
    let meta = file.metadata()?;
    if let Some(what) = not_regular(meta.file_type()) {
        return Err(refused(path, format!("is {what}")));
    }
    if meta.len() > MAX_OWN_BYTES {
        return Err(refused(
            path,
            format!("is {} bytes, more than a rendered file can be", meta.len()),
        ));
    }
    Ok(Some((file, meta)))
}

/// Reads back a file bgpgen writes (to compare with what it would write): `None` when absent.
/// Refuses a symlink, FIFO, device or huge file in its place, as [`write_atomic`] would.
pub fn read_own(path: &Path) -> std::io::Result<Option<String>> {
    let Some((file, _)) = open_own(path)? else {
        return Ok(None);
    };
    let mut text = String::new();
    file.take(MAX_OWN_BYTES).read_to_string(&mut text)?;
    Ok(Some(text))
}

/// Creates `dir` and its missing parents with mode 0750 (existing ones are left as they are).
pub fn create_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(dir)
}

/// A new file in `dir` under a fresh name (`O_EXCL`), with exactly `mode`.
fn new_file(dir: &Path, mode: u32) -> std::io::Result<tempfile::NamedTempFile> {
    let tmp = tempfile::Builder::new()
        .prefix(".bgpgen-")
        .permissions(std::fs::Permissions::from_mode(mode))
        .tempfile_in(dir)?;
    // The umask may have taken bits away at creation: set exactly what is meant (fchmod, on the
    // descriptor).
    tmp.as_file()
        .set_permissions(std::fs::Permissions::from_mode(mode))?;
    Ok(tmp)
}

fn prev_path(path: &Path) -> PathBuf {
    let mut prev = path.as_os_str().to_owned();
    prev.push(".prev");
    PathBuf::from(prev)
}

/// Writes `contents` to `path` atomically. Readers see the old or the new file, never half.
pub fn write_atomic(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    write_file(path, contents, secret, true)
}

/// [`write_atomic`] for files bgpgen renders again at every start (BIRD's route files): no
/// `.prev` copy (the caller keeps what it read, for a rollback) and no fsync. Readers still see
/// the old or the new file, never half; after a power loss the file may be an older version or
/// empty, which the first whole apply of the next start replaces (the shipped config directory is
/// a Memory emptyDir anyway). An fsync of the file and its directory cost 2-25 ms per change on
/// this machine's shared disk, more than the rest of a BIRD route change (BENCHMARKS.md 6.3).
pub fn write_atomic_unsynced(path: &Path, contents: &str, secret: bool) -> std::io::Result<()> {
    write_file(path, contents, secret, false)
}

/// Makes `dir` a directory of bgpgen's own: created (0750) when absent, refused when a symlink
/// or anything else stands in its place (files are never written through a link).
pub fn own_dir(dir: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(dir) {
        Ok(m) if m.file_type().is_symlink() => Err(refused(dir, "is a symbolic link")),
        Ok(m) if m.is_dir() => Ok(()),
        Ok(_) => Err(refused(dir, "is not a directory")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => create_dir(dir),
        Err(e) => Err(e),
    }
}

/// Removes a file bgpgen wrote (or a link planted in its place: unlinking never follows it);
/// absent is fine, a directory is refused.
pub fn remove_own(path: &Path) -> std::io::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(m) if m.is_dir() => Err(refused(path, "is a directory")),
        Ok(_) => std::fs::remove_file(path),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e),
    }
}

/// `durable`: keep `.prev` and fsync the file and its directory.
fn write_file(path: &Path, contents: &str, secret: bool, durable: bool) -> std::io::Result<()> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mode = if secret { SECRET } else { PUBLIC };
    let existed = existing_target(path)?.is_some();
    let mut tmp = new_file(dir, mode)?;
    tmp.write_all(contents.as_bytes())?;
    if !durable {
        tmp.persist(path).map_err(|e| e.error)?;
        return Ok(());
    }
    tmp.as_file().sync_all()?;
    if existed {
        keep_previous(path, dir, mode)?;
    }
    tmp.persist(path).map_err(|e| e.error)?;
    // The renames reach the disk with the directory.
    if let Ok(d) = File::open(dir) {
        let _ = d.sync_all();
    }
    Ok(())
}

/// Copies the current `path` to `path.prev`, as a new file renamed into place.
fn keep_previous(path: &Path, dir: &Path, mode: u32) -> std::io::Result<()> {
    let Some((mut old, meta)) = open_own(path)? else {
        // Removed in the meantime: nothing to keep.
        return Ok(());
    };
    let prev = prev_path(path);
    if let Ok(m) = std::fs::symlink_metadata(&prev)
        && m.is_dir()
    {
        return Err(refused(&prev, "is a directory"));
    }
    let mut tmp = new_file(dir, mode & meta.permissions().mode() & 0o777)?;
    std::io::copy(&mut old, tmp.as_file_mut())?;
    tmp.as_file().sync_all()?;
    tmp.persist(&prev).map_err(|e| e.error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn mode(path: &Path) -> u32 {
        std::fs::symlink_metadata(path)
            .unwrap()
            .permissions()
            .mode()
            & 0o777
    }

    #[test]
    fn a_planted_prev_symlink_is_replaced_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("root-file");
        std::fs::write(&victim, "precious\n").unwrap();
        std::fs::set_permissions(&victim, std::fs::Permissions::from_mode(0o600)).unwrap();
        let conf = dir.path().join("out/bird.conf");
        create_dir(conf.parent().unwrap()).unwrap();
        assert_eq!(mode(conf.parent().unwrap()), 0o750);
        write_atomic(&conf, "old\n", false).unwrap();
        symlink(&victim, prev_path(&conf)).unwrap();
        write_atomic(&conf, "new\n", false).unwrap();
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert_eq!(mode(&victim), 0o600);
        let prev = prev_path(&conf);
        assert!(std::fs::symlink_metadata(&prev).unwrap().is_file());
        assert_eq!(std::fs::read_to_string(&prev).unwrap(), "old\n");
        assert_eq!(std::fs::read_to_string(&conf).unwrap(), "new\n");
        assert_eq!(mode(&conf), 0o644);
    }

    #[test]
    fn a_symlink_fifo_or_directory_as_target_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious\n").unwrap();
        let link = dir.path().join("frr.conf");
        symlink(&victim, &link).unwrap();
        let e = write_atomic(&link, "x\n", true).unwrap_err();
        assert!(e.to_string().contains("is a symbolic link"), "{e}");
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious\n");
        assert!(read_own(&link).is_err());

        let fifo = dir.path().join("gobgpd.toml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = write_atomic(&fifo, "x\n", false).unwrap_err();
        assert!(e.to_string().contains("is a FIFO"), "{e}");
        // Reading it back does not block either.
        assert!(read_own(&fifo).is_err());

        let sub = dir.path().join("routes.txt");
        std::fs::create_dir(&sub).unwrap();
        assert!(write_atomic(&sub, "x\n", false).is_err());
        assert_eq!(read_own(&dir.path().join("absent")).unwrap(), None);
    }

    #[test]
    fn secrets_are_0600_and_prev_never_more_readable_than_its_source() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("frr.conf");
        write_atomic(&conf, "password one\n", true).unwrap();
        assert_eq!(mode(&conf), 0o600);
        write_atomic(&conf, "no password\n", false).unwrap();
        assert_eq!(mode(&conf), 0o644);
        assert_eq!(mode(&prev_path(&conf)), 0o600);
        assert_eq!(
            std::fs::read_to_string(prev_path(&conf)).unwrap(),
            "password one\n"
        );
    }
}
