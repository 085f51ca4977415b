//! `run --manifests DIR`: the directory as a live source. notify reports changes; bursts are
//! coalesced (a `git pull` or `kubectl get -o yaml > f` is many events) and the directory is read
//! again as a whole, which keeps the result identical to `compile -f DIR`.

use std::path::PathBuf;
use std::time::Duration;

use notify::{RecursiveMode, Watcher};
use tokio::sync::mpsc;

use crate::source::SourceEvent;
use crate::source::manifests;

/// Watches `dir` (and the files in `also`, e.g. the options file) and sends a snapshot at start
/// and after every (debounced) change. The watcher lives as long as the returned receiver is read.
pub fn watch_dir(
    dir: PathBuf,
    also: &[PathBuf],
    debounce: Duration,
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
        let load = |dir: &PathBuf| match manifests::load(std::slice::from_ref(dir)) {
            Ok(snapshot) => SourceEvent::Snapshot(snapshot),
            Err(e) => SourceEvent::Invalid(e.to_string()),
        };
        if tx.send(load(&dir)).await.is_err() {
            return;
        }
        while raw_rx.recv().await.is_some() {
            // Coalesce: wait until the directory has been quiet for `debounce`.
            loop {
                match tokio::time::timeout(debounce, raw_rx.recv()).await {
                    Ok(Some(())) => continue,
                    Ok(None) => return,
                    Err(_) => break,
                }
            }
            if tx.send(load(&dir)).await.is_err() {
                return;
            }
        }
    });
    Ok(rx)
}
