//! Reading input files boundedly (docs/design.md section 9, "input is bounded"): only regular files are
//! read, never a FIFO, device or socket (a FIFO named `*.yaml` used to stop the sidecar for
//! good, `-f /dev/zero` grew until the address space ran out), and never more than a limit,
//! checked before the file is read whole. Files are opened with `O_NONBLOCK` and checked with
//! `fstat` on the descriptor opened, so that neither the open nor the check can block or be
//! raced by a rename. Used for manifests, `--options` and `--auth-password-file`.

use std::fmt;
use std::fs::File;
use std::io::Read;
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

/// The default of `--max-input-bytes`: twice a 100,000-pod `kubectl get -o json` dump (250 MB).
/// A JSON file is streamed, so its size costs about half of it in records (the 100k-pod dump
/// peaks at 107-134 MB RSS): 512 MiB of JSON stays near 270 MB, under the DaemonSet's 512 MiB
/// memory limit.
pub const DEFAULT_MAX_INPUT_BYTES: u64 = 512 << 20;

/// Limits on what is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file read (streamed JSON).
    pub max_bytes: u64,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            max_bytes: DEFAULT_MAX_INPUT_BYTES,
        }
    }
}

impl Limits {
    /// Largest YAML (or small JSON) file, read whole and parsed from memory: a YAML file costs
    /// about 1.6 times its size at its peak (the 164 MB YAML of 100k pods peaks at 260 MB), so it
    /// is held to 3/8 of the streamed limit: 192 MiB at the default, ~310 MB at peak.
    pub fn max_whole_bytes(&self) -> u64 {
        self.max_bytes / 8 * 3
    }
}

/// At most this much of an `--options` file is read.
pub const MAX_OPTIONS_BYTES: u64 = 1 << 20;
/// At most this much of an `--auth-password-file` is read (a password is at most 80 characters).
pub const MAX_PASSWORD_FILE_BYTES: u64 = 64 << 10;

/// Why a file was not read.
#[derive(Debug)]
pub enum ReadError {
    Io(std::io::Error),
    /// Not a regular file: a FIFO, a device, a socket or a directory.
    NotRegular(&'static str),
    TooLarge {
        size: u64,
        limit: u64,
    },
}

impl fmt::Display for ReadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ReadError::Io(e) => write!(f, "{e}"),
            ReadError::NotRegular(what) => {
                write!(
                    f,
                    "is {what}, not a regular file; only regular files are read"
                )
            }
            ReadError::TooLarge { size, limit } => write!(
                f,
                "is {size} bytes, more than the limit of {limit} bytes (--max-input-bytes); not read"
            ),
        }
    }
}

impl std::error::Error for ReadError {}

impl From<ReadError> for std::io::Error {
    fn from(e: ReadError) -> std::io::Error {
        match e {
            ReadError::Io(e) => e,
            other => std::io::Error::other(other.to_string()),
        }
    }
}

/// What a file type is, for messages; `None` for a regular file.
pub fn not_regular(t: std::fs::FileType) -> Option<&'static str> {
    if t.is_file() {
        None
    } else if t.is_fifo() {
        Some("a FIFO")
    } else if t.is_socket() {
        Some("a socket")
    } else if t.is_char_device() {
        Some("a character device")
    } else if t.is_block_device() {
        Some("a block device")
    } else if t.is_dir() {
        Some("a directory")
    } else {
        Some("not a regular file")
    }
}

/// Opens `path` for reading (following symlinks: a ConfigMap or Secret volume is made of them)
/// without blocking, and checks on the descriptor that it is a regular file of at most `limit`
/// bytes. Returns the file and its size.
pub fn open_regular(path: &Path, limit: u64) -> Result<(File, std::fs::Metadata), ReadError> {
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NONBLOCK | libc::O_CLOEXEC | libc::O_NOCTTY)
        .open(path)
        .map_err(ReadError::Io)?;
    let meta = file.metadata().map_err(ReadError::Io)?;
    if let Some(what) = not_regular(meta.file_type()) {
        return Err(ReadError::NotRegular(what));
    }
    if meta.len() > limit {
        return Err(ReadError::TooLarge {
            size: meta.len(),
            limit,
        });
    }
    Ok((file, meta))
}

/// Reads at most `limit` bytes of `reader` as UTF-8; more is an error, not a truncation (a file
/// that grows while read, stdin).
pub fn read_limited(reader: impl Read, limit: u64) -> Result<String, ReadError> {
    let mut bytes = Vec::new();
    reader
        .take(limit.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(ReadError::Io)?;
    if bytes.len() as u64 > limit {
        return Err(ReadError::TooLarge {
            size: bytes.len() as u64,
            limit,
        });
    }
    String::from_utf8(bytes).map_err(|e| {
        ReadError::Io(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("not UTF-8 text ({e})"),
        ))
    })
}

/// Reads a whole regular file of at most `limit` bytes.
pub fn read_regular(path: &Path, limit: u64) -> Result<String, ReadError> {
    let (file, _) = open_regular(path, limit)?;
    read_limited(file, limit)
}

/// [`read_regular`] as the `std::fs::read_to_string` the option code expects (`--options`).
pub fn read_options_file(path: &Path) -> std::io::Result<String> {
    Ok(read_regular(path, MAX_OPTIONS_BYTES)?)
}

/// [`read_regular`] for `--auth-password-file`.
pub fn read_password_file(path: &Path) -> std::io::Result<String> {
    Ok(read_regular(path, MAX_PASSWORD_FILE_BYTES)?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fifos_devices_and_directories_are_refused_without_blocking() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("f.yaml");
        let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
        // SAFETY: a valid NUL-terminated path; mkfifo only creates a node.
        assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o600) }, 0);
        let e = read_regular(&fifo, 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("is a FIFO"), "{e}");
        let e = read_regular(Path::new("/dev/zero"), 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("is a character device"), "{e}");
        let e = read_regular(dir.path(), 1 << 20).unwrap_err();
        assert!(e.to_string().starts_with("is a directory"), "{e}");
    }

    #[test]
    fn a_file_above_the_limit_is_refused_before_it_is_read() {
        let dir = tempfile::tempdir().unwrap();
        let big = dir.path().join("big.json");
        // Sparse: 2 GiB on paper, nothing on disk.
        File::create(&big).unwrap().set_len(2 << 30).unwrap();
        let e = read_regular(&big, 1 << 20).unwrap_err();
        assert_eq!(
            e.to_string(),
            "is 2147483648 bytes, more than the limit of 1048576 bytes (--max-input-bytes); not read"
        );
        assert!(matches!(
            read_limited(&b"abcdef"[..], 3),
            Err(ReadError::TooLarge { .. })
        ));
        assert_eq!(read_limited(&b"abc"[..], 3).unwrap(), "abc");
    }
}
