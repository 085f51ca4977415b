//! `run --manifests DIR`: the directory as a live source. notify reports changes; bursts are
//! coalesced (a `git pull` or `kubectl get -o yaml > f` is many events; see [`Throttle`] for
//! when a load happens) and the directory is loaded
//! again through a [`ManifestCache`]: only the files that changed are read and parsed, their
//! objects compared with the previous versions and sent as object changes, and the state is
//! still identical to `compile -f DIR`. Loading is CPU work (seconds for a 250 MB file),
//! so it runs on tokio's blocking pool, not on a worker thread.

use std::path::{Path, PathBuf};
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::source::input::Limits;
use crate::source::manifests::{Loaded, ManifestCache};
use crate::source::throttle::Throttle;
use crate::source::{Changes, SourceEvent};

/// How long the first change after a quiet spell waits for the rest of its burst: a file written
/// in several steps, the next files of a `git pull`. A file caught half-written is refused and the
/// last good configuration stays until the event of its last write, at most `debounce` later.
const SETTLE: Duration = Duration::from_millis(10);

/// Watches `dir` (and the files in `also`, e.g. the options file) and sends a snapshot at start
/// and after changes: [`SETTLE`] after a change that follows a quiet spell, then at most once per
/// `debounce` while changes keep coming ([`Throttle`]). The watcher lives as long as the returned receiver is read.
pub fn watch_dir(
    dir: PathBuf,
    also: &[PathBuf],
    debounce: Duration,
    limits: Limits,
) -> Result<mpsc::Receiver<SourceEvent>, notify::Error> {
    let (raw_tx, mut raw_rx) = mpsc::unbounded_channel::<()>();
    let mut watcher = notify::recommended_watcher(move |event: notify::Result<notify::Event>| {
        // Access events (a reader opening a file) change nothing.
        if let Ok(e) = event
            && !matches!(e.kind, notify::EventKind::Access(_))
        {
            let _ = raw_tx.send(());
        }
    })?;
    watcher.watch(&dir, RecursiveMode::Recursive)?;
    for path in also {
        // A directory (templates) is watched itself; a file through its directory, because
        // editors replace files by rename.
        let target = if path.is_dir() {
            path.as_path()
        } else {
            path.parent()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or(std::path::Path::new("."))
        };
        watcher.watch(target, RecursiveMode::NonRecursive)?;
    }
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        // Keep the watcher alive for as long as this task runs.
        let _watcher = watcher;
        let mut cache = ManifestCache::with_limits(limits);
        let mut event;
        (cache, event) = load(cache, &dir).await;
        if tx.send(event).await.is_err() {
            return;
        }
        let mut throttle = Throttle::new(debounce, SETTLE);
        throttle.sent(tokio::time::Instant::now());
        while raw_rx.recv().await.is_some() {
            let due = throttle.changed(tokio::time::Instant::now());
            // Coalesce what arrives until the load is due.
            loop {
                tokio::select! {
                    event = raw_rx.recv() => if event.is_none() { return },
                    _ = tokio::time::sleep_until(due) => break,
                }
            }
            throttle.sent(tokio::time::Instant::now());
            (cache, event) = load(cache, &dir).await;
            if tx.send(event).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}

/// Loads `dir` through `cache` on tokio's blocking pool; the cache goes there and comes back.
/// After a load that succeeded, what changed is sent as object changes (only the changed files'
/// objects, compared with their previous versions); the whole snapshot at start, after an
/// error, and where the changed files alone cannot decide ([`crate::source::manifests::Loaded`]).
async fn load(mut cache: ManifestCache, dir: &Path) -> (ManifestCache, SourceEvent) {
    let paths = vec![dir.to_path_buf()];
    tokio::task::spawn_blocking(move || {
        let event = match cache.load_changes(&paths) {
            Ok(loaded) => {
                for note in cache.notes() {
                    tracing::warn!(%note, "manifests");
                }
                match loaded {
                    Loaded::Whole(snapshot) => SourceEvent::Snapshot(std::sync::Arc::new(snapshot)),
                    Loaded::Changes(events) => SourceEvent::Changes(Changes { events }),
                }
            }
            Err(e) => SourceEvent::Invalid(e.to_string()),
        };
        (cache, event)
    })
    .await
    .unwrap_or_else(|e| std::panic::resume_unwind(e.into_panic()))
}

/// The `--auth-password-file` (from the flags or the `--options` file) as last seen, so that a
/// rotated password is applied within a check interval without waiting for an unrelated change:
/// a Kubernetes Secret volume rotates by swapping its `..data` symlink, which no watch of the
/// manifests sees. Only a digest of the content is kept.
pub struct SecretFile {
    args: crate::options::SpeakerArgs,
    options: Option<PathBuf>,
    last: Option<[u8; 32]>,
}

impl SecretFile {
    pub fn new(args: &crate::options::SpeakerArgs, options: Option<&Path>) -> SecretFile {
        let mut file = SecretFile {
            args: args.clone(),
            options: options.map(Path::to_path_buf),
            last: None,
        };
        file.last = file.read();
        file
    }

    fn path(&self) -> Option<PathBuf> {
        // An options file that does not read or parse leaves the command line's (the apply
        // reports the file's error).
        crate::front::layered(&self.args, self.options.as_deref())
            .unwrap_or_else(|_| self.args.clone())
            .auth_password_file
    }

    fn read(&self) -> Option<[u8; 32]> {
        use sha2::Digest;
        let text = crate::source::input::read_password_file(&self.path()?).ok()?;
        Some(sha2::Sha256::digest(text.as_bytes()).into())
    }

    /// Whether a password file is given (by the flags or the options file as it is now).
    pub fn configured(&self) -> bool {
        self.path().is_some()
    }

    /// True once each time the file's content differs from the last time it was looked at.
    pub fn changed(&mut self) -> bool {
        let now = self.read();
        if now == self.last {
            return false;
        }
        self.last = now;
        true
    }
}
