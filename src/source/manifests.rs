//! Manifest files as a source: `-f PATH` (files, directories, `-` for stdin), multi-document
//! YAML or JSON, `kind: List`. Objects of kinds the rules do not use are ignored; a broken document
//! or a used object with wrong field types is an error naming the file, document and object.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use crate::snapshot::{FieldError, Object, Origin, Snapshot};
use crate::source::input::{self, Limits};
use crate::source::json_stream;
use crate::source::wire::{AnyMeta, AnyObject, AnySpec, AnyStatus};
use crate::text;

/// Where in the input something is: file, document (1-based) and list item (0-based, as in
/// `items[3]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Location {
    pub file: String,
    pub document: usize,
    pub item: Option<usize>,
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: document {}",
            text::escape(&self.file),
            self.document
        )?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

/// Every part that comes from the input (file names, object names, parser messages) is escaped
/// and bounded when shown ([`text`]): a file or an object cannot forge a line of the output.
#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{}: {source}", text::escape(path))]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{}{}: not valid {}: {}", text::escape(file), at.map(|(l, c)| format!(":{l}:{c}")).unwrap_or_default(), if *json { "JSON" } else { "YAML" }, text::message(message))]
    Syntax {
        file: String,
        /// JSON (by name or first character) rather than YAML.
        json: bool,
        /// Line and column in the file, when known.
        at: Option<(u64, u64)>,
        message: String,
    },
    #[error("{location}: {}", text::message(message))]
    Document { location: Location, message: String },
    #[error("{location}: {}: {error}", text::escape(object))]
    Object {
        location: Location,
        object: String,
        error: FieldError,
    },
    #[error("{0}")]
    Many(ManyErrors),
}

/// Several load errors, reported together so that one run shows every broken object.
#[derive(Debug)]
pub struct ManyErrors(pub Vec<LoadError>);

impl fmt::Display for ManyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Expands `-f` arguments into the files to read: directories recursively (`.yaml`, `.yml`,
/// `.json`, sorted), files as given, `-` for stdin.
pub fn expand_paths(paths: &[PathBuf]) -> Result<Vec<PathBuf>, LoadError> {
    Ok(expand(paths, &mut Vec::new())?
        .into_iter()
        .map(|f| f.path)
        .collect())
}

/// A file to read, and whether a directory walk found it: a file given by name that is not a
/// regular file is an error, one found in a directory is skipped with a warning.
#[derive(Debug, Clone)]
struct Found {
    path: PathBuf,
    in_dir: bool,
}

/// [`expand_paths`], noting what was skipped in `notes`. Every directory is read once: a
/// directory reached again (a symlink loop, `ln -s . loop`, or a second link to it) is skipped,
/// so two such links cost one extra stat, not an exponential walk.
fn expand(paths: &[PathBuf], notes: &mut Vec<String>) -> Result<Vec<Found>, LoadError> {
    let mut out = Vec::new();
    let mut visited = HashSet::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(Found {
                path: p.clone(),
                in_dir: false,
            });
            continue;
        }
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &m, &mut visited, &mut out, notes)?,
            Ok(_) => out.push(Found {
                path: p.clone(),
                in_dir: false,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(LoadError::Io {
                    path: p.display().to_string(),
                    source: std::io::Error::new(
                        std::io::ErrorKind::NotFound,
                        "no such file or directory",
                    ),
                });
            }
            Err(source) => {
                return Err(LoadError::Io {
                    path: p.display().to_string(),
                    source,
                });
            }
        }
    }
    Ok(out)
}

fn walk(
    dir: &Path,
    meta: &std::fs::Metadata,
    visited: &mut HashSet<(u64, u64)>,
    out: &mut Vec<Found>,
    notes: &mut Vec<String>,
) -> Result<(), LoadError> {
    if !visited.insert((meta.dev(), meta.ino())) {
        notes.push(format!(
            "{}: skipped: a directory already read (a symlink loop, or a second link to it)",
            text::escape(&dir.display().to_string())
        ));
        return Ok(());
    }
    let io = |source| LoadError::Io {
        path: dir.display().to_string(),
        source,
    };
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .map_err(io)?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .map_err(io)?;
    entries.sort();
    for path in entries {
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        let manifest = matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        );
        match std::fs::metadata(&path) {
            Ok(m) if m.is_dir() => walk(&path, &m, visited, out, notes)?,
            Ok(m) if manifest => match input::not_regular(m.file_type()) {
                None => out.push(Found { path, in_dir: true }),
                Some(what) => notes.push(format!(
                    "{}: skipped: {what}, not a regular file",
                    text::escape(&path.display().to_string())
                )),
            },
            // A dangling link to a manifest is an error when read (its objects must not be
            // dropped silently); anything else is not a manifest.
            Err(_) if manifest => out.push(Found { path, in_dir: true }),
            _ => {}
        }
    }
    Ok(())
}

/// Reads every manifest named by `paths` into a snapshot, with the default [`Limits`].
pub fn load(paths: &[PathBuf]) -> Result<Snapshot, LoadError> {
    load_with(paths, Limits::default())
}

/// [`load`] with the given limits (`--max-input-bytes`).
pub fn load_with(paths: &[PathBuf], limits: Limits) -> Result<Snapshot, LoadError> {
    let mut notes = Vec::new();
    let inputs = read_all(paths, limits, &mut notes)?;
    let mut snapshot = assemble(
        inputs
            .iter()
            .map(|(name, input)| (name.as_str(), parse_input(name, input))),
    )?;
    snapshot.input_warnings = notes;
    Ok(snapshot)
}

/// A JSON syntax error of `file`, cited by line and column; `what` says where inside the file
/// (`items[3]: `), when the error's position is relative to that part.
fn json_syntax(file: &str, what: &str, e: &serde_json::Error) -> LoadError {
    let (message, at) = json_message(e);
    LoadError::Syntax {
        file: file.to_string(),
        json: true,
        at: if what.is_empty() { at } else { None },
        message: format!("{what}{message}"),
    }
}

/// serde_json's message without its ` at line L column C` suffix, and that position.
fn json_message(e: &serde_json::Error) -> (String, Option<(u64, u64)>) {
    let full = e.to_string();
    if e.line() == 0 {
        return (full, None);
    }
    let suffix = format!(" at line {} column {}", e.line(), e.column());
    let message = full.strip_suffix(&suffix).unwrap_or(&full).to_string();
    (message, Some((e.line() as u64, e.column() as u64)))
}

/// A YAML syntax error of `file`, cited by line and column.
fn yaml_syntax(file: &str, e: &crate::source::yaml::Error) -> LoadError {
    let (at, message) = crate::source::yaml::describe(e);
    LoadError::Syntax {
        file: file.to_string(),
        json: false,
        at,
        message,
    }
}

/// A file as read: its text, or, for a JSON file too large to hold, the open file to stream it
/// from (never read whole).
#[derive(Debug)]
enum Input {
    Text(String),
    Stream(std::fs::File),
}

/// JSON files larger than this are streamed (json_stream): 100,000 pods are 250 MB of JSON, and
/// the text alone would not fit the memory budget.
const STREAM_ABOVE: u64 = 16 << 20;

fn read_error(name: &str, e: input::ReadError) -> LoadError {
    LoadError::Io {
        path: name.to_string(),
        source: e.into(),
    }
}

/// `(display name, input)` of every file named by `paths` (`-` is stdin).
fn read_all(
    paths: &[PathBuf],
    limits: Limits,
    notes: &mut Vec<String>,
) -> Result<Vec<(String, Input)>, LoadError> {
    let files = expand(paths, notes)?;
    let mut inputs = Vec::with_capacity(files.len());
    for file in files {
        if let Some((name, text, _)) = read_input(&file, limits, notes)? {
            inputs.push((name, text));
        }
    }
    Ok(inputs)
}

/// `(display name, input, stamp)` of one file; stdin has no stamp. `None` for a file of a
/// directory that turned out not to be a regular file when opened (skipped, noted).
fn read_input(
    found: &Found,
    limits: Limits,
    notes: &mut Vec<String>,
) -> Result<Option<(String, Input, Option<Stamp>)>, LoadError> {
    let file = found.path.as_path();
    if file.as_os_str() == "-" {
        let name = "<stdin>";
        let text = input::read_limited(std::io::stdin().lock(), limits.max_bytes)
            .map_err(|e| read_error(name, e))?;
        if !is_json(name, &text) && text.len() as u64 > limits.max_whole_bytes() {
            return Err(read_error(
                name,
                input::ReadError::TooLarge {
                    size: text.len() as u64,
                    limit: limits.max_whole_bytes(),
                },
            ));
        }
        return Ok(Some((name.to_string(), Input::Text(text), None)));
    }
    let name = file.display().to_string();
    let (f, meta) = match input::open_regular(file, limits.max_bytes) {
        Ok(opened) => opened,
        Err(input::ReadError::NotRegular(what)) if found.in_dir => {
            notes.push(format!(
                "{}: skipped: {what}, not a regular file",
                text::escape(&name)
            ));
            return Ok(None);
        }
        Err(e) => return Err(read_error(&name, e)),
    };
    // The stamp of the file actually read (not of whatever the path names a moment later), taken
    // before reading: a write during the read leaves a newer stamp behind, or a racy one.
    let stamp = Some(Stamp::of(&meta));
    if name.ends_with(".json") && meta.len() > STREAM_ABOVE {
        return Ok(Some((name, Input::Stream(f), stamp)));
    }
    // Read whole and parsed from memory: held to the lower limit.
    let whole = limits.max_whole_bytes();
    if meta.len() > whole {
        return Err(read_error(
            &name,
            input::ReadError::TooLarge {
                size: meta.len(),
                limit: whole,
            },
        ));
    }
    let text = input::read_limited(f, whole).map_err(|e| read_error(&name, e))?;
    Ok(Some((name, Input::Text(text), stamp)))
}

/// JSON is valid YAML, but serde_json is faster and its errors are phrased for JSON.
fn is_json(name: &str, text: &str) -> bool {
    name.ends_with(".json") || (name == "<stdin>" && text.trim_start().starts_with('{'))
}

/// Parses manifests already in memory: `(file name, text)` pairs. Pure, for tests and benchmarks.
pub fn load_texts<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Snapshot, LoadError> {
    // Lazily: each file is parsed just before it is assembled, and its records dropped after.
    assemble(
        inputs
            .into_iter()
            .map(|(name, text)| (name, parse_file(name, text))),
    )
}

/// One object of a file with where it is (the file is known to whoever holds the record).
#[derive(Debug, Clone)]
struct Placed {
    document: usize,
    item: Option<usize>,
    object: Object,
}

/// What a file yields, in the order it is written: objects, and errors about it.
#[derive(Debug)]
enum Entry {
    Object(Placed),
    Error(LoadError),
}

/// The per-file step: one file's text to its objects and errors, in order. Everything that
/// depends on the other files (conflicts) is left to [`assemble`]. The text is parsed here; the
/// records are handed over one by one, so that they move into the snapshot without a second list.
fn parse_file<'a>(name: &'a str, text: &str) -> impl Iterator<Item = Entry> + use<'a> {
    entries(name, parse_documents(name, text))
}

/// [`parse_file`] for a file as read.
fn parse_input<'a>(name: &'a str, input: &Input) -> impl Iterator<Item = Entry> + use<'a> {
    entries(
        name,
        match input {
            Input::Text(text) => parse_documents(name, text),
            Input::Stream(file) => stream_documents(name, file),
        },
    )
}

/// The fast reader over a JSON file streamed from disk, never whole in memory, not even when it
/// is broken: an item that trips the fast reader is read again on its own by the object-by-object
/// reader (which names the object at fault), and what is not one JSON object is a syntax error.
fn stream_documents(name: &str, file: &std::fs::File) -> Result<Vec<ParsedDoc>, LoadError> {
    stream_list(name, file).map(|d| vec![d])
}

fn stream_list(name: &str, file: &std::fs::File) -> Result<ParsedDoc, LoadError> {
    let syntax = |message: String| LoadError::Syntax {
        file: name.to_string(),
        json: true,
        at: None,
        message,
    };
    let reader = std::io::BufReader::with_capacity(1 << 20, file);
    // Scanning and parsing run on two threads (the budget machine has two cores): the scanner
    // hands over items in batches of about 256 KiB, the parser converts them as they come. A
    // parse error ends the parser, whose channel closing stops the scanner.
    let (tx, rx) = std::sync::mpsc::sync_channel::<ItemBatch>(4);
    let parser = std::thread::spawn(move || -> Result<Vec<Parsed>, String> {
        let mut objects = Vec::new();
        for batch in rx {
            for (i, range) in batch.items {
                let bytes = &batch.bytes[range];
                match serde_json::from_slice::<Option<AnyObject>>(bytes) {
                    Ok(item) => objects.extend(item.and_then(|o| fast_convert(o, Some(i)))),
                    Err(_) => {
                        let value = serde_json::from_slice::<Checked>(bytes).map_err(|e| {
                            match json_message(&e) {
                                (m, Some((line, column))) => {
                                    format!(
                                        "items[{i}]: {m} (line {line}, column {column} of the item)"
                                    )
                                }
                                (m, None) => format!("items[{i}]: {m}"),
                            }
                        })?;
                        if let Some(result) = convert_checked(&value) {
                            objects.push(Parsed {
                                item: Some(i),
                                result,
                            });
                        }
                    }
                }
            }
        }
        Ok(objects)
    });
    let mut batch = ItemBatch::default();
    let split = json_stream::split_list(reader, |i, bytes| {
        let start = batch.bytes.len();
        batch.bytes.extend_from_slice(bytes);
        batch.items.push((i, start..batch.bytes.len()));
        if batch.bytes.len() >= 256 << 10 {
            tx.send(std::mem::take(&mut batch)).map_err(|_| ())?;
        }
        Ok::<(), ()>(())
    });
    if split.is_ok() && !batch.items.is_empty() {
        // A parser that stopped already reports its error below.
        let _ = tx.send(batch);
    }
    drop(tx);
    let objects = parser
        .join()
        .unwrap_or_else(|e| std::panic::resume_unwind(e))
        .map_err(syntax)?;
    let skeleton = match split {
        Ok(skeleton) => skeleton,
        Err(json_stream::SplitError::Io(source)) => {
            return Err(LoadError::Io {
                path: name.to_string(),
                source,
            });
        }
        Err(e) => {
            return Err(syntax(format!(
                "{e} (a JSON file above {} MiB is read as a stream and must hold one object, e.g. a List)",
                STREAM_ABOVE >> 20
            )));
        }
    };
    // Whatever the rest of the List holds (its own fields are not read), its `kind` decides; a
    // repeated key there is refused as anywhere else.
    let head: Option<Checked> = serde_json::from_slice(&skeleton).ok();
    if let Some(head) = &head
        && head
            .value
            .get("kind")
            .and_then(Value::as_str)
            .is_some_and(|k| k.ends_with("List"))
    {
        if let Some(key) = &head.dup {
            return Err(syntax(format!("duplicate key {}", text::quote(key))));
        }
        return Ok(ParsedDoc {
            objects,
            not_an_object: false,
        });
    }
    // Not a List (its `items`, if any, are not objects of the cluster): the rest is small, as the
    // splitter bounds it, and is read the ordinary way.
    let text = String::from_utf8(skeleton).map_err(|_| syntax("not UTF-8 text".to_string()))?;
    parse_documents(name, &text).map(|mut docs| docs.pop().unwrap_or_default())
}

/// Items cut out of a streamed List, on their way to the parser thread.
#[derive(Default)]
struct ItemBatch {
    bytes: Vec<u8>,
    /// Each item's index in `items` and its bytes.
    items: Vec<(usize, std::ops::Range<usize>)>,
}

/// A file's parse result as entries, in order.
fn entries(
    name: &str,
    parsed: Result<Vec<ParsedDoc>, LoadError>,
) -> impl Iterator<Item = Entry> + use<'_> {
    let (documents, syntax) = match parsed {
        Ok(d) => (d, None),
        Err(e) => (Vec::new(), Some(Entry::Error(e))),
    };
    let entries = documents
        .into_iter()
        .enumerate()
        .flat_map(move |(index, doc)| {
            let document = index + 1;
            let whole = doc
                .not_an_object
                .then(|| not_an_object(name, document, None));
            let objects = doc.objects.into_iter().map(move |parsed| {
                let item = parsed.item;
                match parsed.result {
                    Ok(object) => Entry::Object(Placed {
                        document,
                        item,
                        object,
                    }),
                    Err(Invalid::NotAnObject) => not_an_object(name, document, item),
                    Err(Invalid::Field { object, error }) => Entry::Error(LoadError::Object {
                        location: Location {
                            file: name.to_string(),
                            document,
                            item,
                        },
                        object,
                        error,
                    }),
                }
            });
            whole.into_iter().chain(objects)
        });
    syntax.into_iter().chain(entries)
}

fn not_an_object(file: &str, document: usize, item: Option<usize>) -> Entry {
    Entry::Error(LoadError::Document {
        location: Location {
            file: file.to_string(),
            document,
            item,
        },
        message: "not a Kubernetes object (expected a mapping with apiVersion and kind)".into(),
    })
}

/// A file's entries as its objects if there is no error among them, else as they are.
fn objects_if_clean(mut entries: impl Iterator<Item = Entry>) -> Result<Vec<Placed>, Vec<Entry>> {
    let mut objects = Vec::new();
    for entry in entries.by_ref() {
        match entry {
            Entry::Object(placed) => objects.push(placed),
            Entry::Error(e) => {
                let before = objects.into_iter().map(Entry::Object);
                return Err(before.chain([Entry::Error(e)]).chain(entries).collect());
            }
        }
    }
    Ok(objects)
}

/// The snapshot of files' entries, taken in order: a second different definition of an object
/// is an error located at the second; every error of every file is reported.
fn assemble<N: AsRef<str>, E: Iterator<Item = Entry>>(
    files: impl IntoIterator<Item = (N, E)>,
) -> Result<Snapshot, LoadError> {
    let mut snapshot = Snapshot::new(Origin::Manifests);
    let mut errors = Vec::new();
    for (name, entries) in files {
        for entry in entries {
            match entry {
                Entry::Object(placed) => {
                    if let Err(conflict) = snapshot.insert_new(placed.object) {
                        errors.push(LoadError::Document {
                            location: Location {
                                file: name.as_ref().to_string(),
                                document: placed.document,
                                item: placed.item,
                            },
                            message: conflict.to_string(),
                        });
                    }
                }
                Entry::Error(e) => errors.push(e),
            }
        }
    }
    match errors.len() {
        0 => Ok(snapshot),
        1 => Err(errors.remove(0)),
        _ => Err(LoadError::Many(ManyErrors(errors))),
    }
}

/// What identifies a version of a file without reading it. `ctime` is in it because `mtime` can
/// be set back (`touch -d`, `tar x`, `rsync -t`) while the kernel always moves `ctime` forward.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Stamp {
    dev: u64,
    ino: u64,
    len: u64,
    mtime: (i64, i64),
    ctime: (i64, i64),
}

/// How far back from now a change time makes a stamp untrustworthy; see [`Stamp::is_racy`].
const RACY_WINDOW: Duration = Duration::from_secs(2);

impl Stamp {
    fn of(m: &std::fs::Metadata) -> Stamp {
        Stamp {
            dev: m.dev(),
            ino: m.ino(),
            len: m.size(),
            mtime: (m.mtime(), m.mtime_nsec()),
            ctime: (m.ctime(), m.ctime_nsec()),
        }
    }

    /// Whether a later write could leave this very stamp behind (git's "racily clean" entries).
    /// Timestamps are coarse: Linux takes them from a clock that ticks every few milliseconds
    /// (even where the field holds nanoseconds), NFS and SMB servers often keep whole seconds,
    /// FAT two seconds. A write of the same length within the same tick as the version read
    /// keeps `len`, `mtime` and `ctime`, so a file changed that recently is read again on the
    /// next load, until its last change is older than the coarsest granularity.
    fn is_racy(&self, now: SystemTime) -> bool {
        let changed = self.mtime.max(self.ctime);
        let Ok(since_epoch) = now.duration_since(SystemTime::UNIX_EPOCH) else {
            return true;
        };
        let horizon = since_epoch.saturating_sub(RACY_WINDOW);
        (changed.0, changed.1) >= (horizon.as_secs() as i64, i64::from(horizon.subsec_nanos()))
    }
}

/// A file parsed without errors, kept for as long as its stamp says it has not changed.
#[derive(Debug)]
struct CachedFile {
    stamp: Stamp,
    /// Changed too recently for the stamp to be trusted: read again on the next load.
    racy: bool,
    objects: Vec<Placed>,
    /// The digests ([`ref_digest`]) of the objects it defines, each once, sorted: what it
    /// counts for in `ManifestCache::defined`.
    refs: Vec<u64>,
}

impl CachedFile {
    /// Whether `path` still holds the version cached (a stat, no read).
    fn is_current(&self, path: &Path) -> bool {
        !self.racy && std::fs::metadata(path).is_ok_and(|m| Stamp::of(&m) == self.stamp)
    }
}

/// What identifies an object (kind, namespace, name), borrowed from it.
type RefKey<'a> = (crate::model::Kind, Option<&'a str>, &'a str);

fn ref_key(object: &Object) -> RefKey<'_> {
    use crate::model::Kind;
    match object {
        Object::Node(n) => (Kind::Node, None, n.name.as_str()),
        Object::Pod(p) => (Kind::Pod, Some(p.namespace.as_str()), p.name.as_str()),
        Object::Service(s) => (Kind::Service, Some(s.namespace.as_str()), s.name.as_str()),
        Object::Subnet(s) => (Kind::Subnet, None, s.name.as_str()),
        Object::Eip(e) => (Kind::IptablesEip, None, e.name.as_str()),
        Object::Gateway(g) => (Kind::VpcNatGateway, None, g.name.as_str()),
    }
}

/// A digest of an object's identity. Two objects of different identities that share one only
/// make a change to either take the whole re-assembly (as if they were the same object defined
/// in two files): never a wrong result. Fixed keys, so a digest means the same in every load.
fn ref_digest(object: &Object) -> u64 {
    use std::hash::{Hash, Hasher};
    // `DefaultHasher::new()` has fixed keys (unlike a `HashMap`'s `RandomState`).
    let mut hasher = std::hash::DefaultHasher::new();
    ref_key(object).hash(&mut hasher);
    hasher.finish()
}

/// The digests of `objects`, each once, sorted.
fn ref_digests(objects: &[Placed]) -> Vec<u64> {
    let mut refs: Vec<u64> = objects.iter().map(|p| ref_digest(&p.object)).collect();
    refs.sort_unstable();
    refs.dedup();
    refs
}

/// What a load of a [`ManifestCache`] gives its consumer.
#[derive(Debug)]
pub enum Loaded {
    /// The whole state: the first load, the first after an error, and whenever the changed
    /// files' own contents cannot decide the result (an object defined in another file too, or
    /// twice in one file, an object moving between files, stdin).
    Whole(Snapshot),
    /// What changed since the previous load (which succeeded): applied to the state that load
    /// gave, these give exactly the snapshot a whole load of the directory gives now.
    Changes(Vec<crate::engine::Event>),
}

/// What a file that left the cache during a load (changed, removed, or now broken) held.
struct Left {
    objects: Vec<Placed>,
}

/// What the refresh step of a load found: the files in order, those that changed, the notes.
struct Refreshed {
    /// Every file in the order the whole load takes them, with its display name.
    sources: Vec<(String, Source)>,
    /// Files whose cached version was dropped, with what they held.
    left: Vec<Left>,
    /// Files read and cached anew.
    entered: Vec<PathBuf>,
    notes: Vec<String>,
}

enum Source {
    Cached(PathBuf),
    /// Not cached: a file with errors (its entries as they are), stdin.
    Uncached(Vec<Entry>),
}

/// [`load`] for a directory read again and again (`run --manifests`): files whose stamp
/// (device, inode, length, mtime, ctime) has not changed since the last load are not read or
/// parsed again, their objects are taken from the cache. The result, snapshot or errors, is the
/// one [`load`] returns for the same files: the same per-file step and the same assembly. Only
/// files without errors are kept (a broken file is read again on every load). The cost is a copy
/// of every object held between loads (~55 MB for 100,000 pods), and a digest of each object's
/// identity, in its file and in the counts of the files defining it (~3 MB).
///
/// [`ManifestCache::load_changes`] gives the same state as object changes: the changed files'
/// objects against their previous versions, without assembling the rest again.
#[derive(Debug, Default)]
pub struct ManifestCache {
    files: HashMap<PathBuf, CachedFile>,
    /// For each object digest, how many cached files define it: an object of a changed file that
    /// no other file defines is decided by that file alone.
    defined: HashMap<u64, u32>,
    limits: Limits,
    /// Files read (not taken from the cache) by the last load.
    last_reads: usize,
    /// The last load succeeded: its consumer holds the state of the files cached now (no file
    /// of that load had errors, so every file is cached).
    synced: bool,
    /// The notes (skipped files) of the last load that succeeded.
    notes: Vec<String>,
}

impl ManifestCache {
    pub fn new() -> ManifestCache {
        ManifestCache::default()
    }

    /// A cache that reads within `limits` (`--max-input-bytes`).
    pub fn with_limits(limits: Limits) -> ManifestCache {
        ManifestCache {
            limits,
            ..ManifestCache::default()
        }
    }

    /// Number of files currently cached (files that parsed without errors).
    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }

    /// Files read and parsed by the last load (the others were taken from the cache).
    pub fn last_reads(&self) -> usize {
        self.last_reads
    }

    /// What the last successful load skipped and why (the snapshot's `input_warnings`).
    pub fn notes(&self) -> &[String] {
        &self.notes
    }

    /// Like [`load`], reading and parsing only the files that changed since the last call.
    pub fn load(&mut self, paths: &[PathBuf]) -> Result<Snapshot, LoadError> {
        self.load_at(paths, SystemTime::now())
    }

    /// [`ManifestCache::load`] with the clock given, for tests of the racy window.
    fn load_at(&mut self, paths: &[PathBuf], now: SystemTime) -> Result<Snapshot, LoadError> {
        self.synced = false;
        let refreshed = self.refresh(paths, now)?;
        self.whole(refreshed)
    }

    /// Like [`ManifestCache::load`], as changes to the state the previous load gave when that
    /// load succeeded: only the changed files' objects are compared, O(change), where a reload
    /// assembles and a relist compares every object. Errors are those of [`load`].
    pub fn load_changes(&mut self, paths: &[PathBuf]) -> Result<Loaded, LoadError> {
        self.load_changes_at(paths, SystemTime::now())
    }

    /// [`ManifestCache::load_changes`] with the clock given (tests pretend to load long after
    /// the files were written, past the racy window).
    #[doc(hidden)]
    pub fn load_changes_at(
        &mut self,
        paths: &[PathBuf],
        now: SystemTime,
    ) -> Result<Loaded, LoadError> {
        let synced = std::mem::replace(&mut self.synced, false);
        let refreshed = self.refresh(paths, now)?;
        let clean = refreshed
            .sources
            .iter()
            .all(|(_, s)| matches!(s, Source::Cached(_)));
        if synced
            && clean
            && let Some(events) = self.delta(&refreshed)
        {
            self.synced = true;
            self.notes = refreshed.notes;
            return Ok(Loaded::Changes(events));
        }
        self.whole(refreshed).map(Loaded::Whole)
    }

    /// The whole assembly of the files as refreshed: what [`load`] gives.
    fn whole(&mut self, refreshed: Refreshed) -> Result<Snapshot, LoadError> {
        let Refreshed {
            sources,
            notes,
            left,
            ..
        } = refreshed;
        // The changed files' previous objects are not needed for a whole assembly: not held
        // alongside the snapshot it builds.
        drop(left);
        let cache = &self.files;
        let mut snapshot = assemble(sources.into_iter().map(|(name, source)| {
            let entries: Box<dyn Iterator<Item = Entry>> = match source {
                Source::Cached(path) => {
                    Box::new(cache[&path].objects.iter().cloned().map(Entry::Object))
                }
                Source::Uncached(entries) => Box::new(entries.into_iter()),
            };
            (name, entries)
        }))?;
        snapshot.input_warnings = notes.clone();
        self.synced = true;
        self.notes = notes;
        Ok(snapshot)
    }

    /// The events that turn the previous state into the one of the files cached now, from the
    /// changed files alone; `None` where they cannot decide (the whole assembly does).
    fn delta(&self, refreshed: &Refreshed) -> Option<Vec<crate::engine::Event>> {
        use crate::engine::Event;
        // Every file of this load is cached (no errors), so each changed file is in `left`,
        // `entered` or both. An object any other file defines (now) is not decided here.
        let mut old: HashMap<RefKey<'_>, &Object> = HashMap::new();
        for left in &refreshed.left {
            for placed in &left.objects {
                // Two definitions in the old version of one file were identical (that load
                // succeeded): either stands for both.
                old.insert(ref_key(&placed.object), &placed.object);
            }
        }
        let mut new: HashMap<RefKey<'_>, &Object> = HashMap::new();
        for path in &refreshed.entered {
            let file = self.files.get(path)?;
            for placed in &file.objects {
                let object = &placed.object;
                // Defined twice in the changed files (one file or two): conflict or duplicate,
                // the assembly decides, and names the place.
                if new.insert(ref_key(object), object).is_some() {
                    return None;
                }
            }
        }
        let elsewhere = |object: &Object, counted_here: bool| {
            let count = self.defined.get(&ref_digest(object)).copied().unwrap_or(0);
            count > u32::from(counted_here)
        };
        let mut events = Vec::new();
        for (key, object) in &new {
            // As it was: whatever else defines it was identical to it, and still is (a file that
            // changed is among these, and holds it once).
            if old.get(key) == Some(object) {
                continue;
            }
            // A new version that another file may define differently: conflict or not, the
            // assembly decides.
            if elsewhere(object, true) {
                return None;
            }
            events.push(Event::Upsert((*object).clone()));
        }
        for (key, object) in &old {
            if new.contains_key(key) {
                continue;
            }
            // Perhaps still defined by an unchanged file (a duplicate that was identical): the
            // assembly decides (a shared digest alone must not keep an object).
            if elsewhere(object, false) {
                return None;
            }
            events.push(Event::Delete(object.object_ref()));
        }
        if refreshed.notes != self.notes {
            events.push(Event::InputWarnings(refreshed.notes.clone()));
        }
        Some(events)
    }

    /// Drops the cached version of `path`, if any, from the cache and the counts.
    fn forget(&mut self, path: &Path) -> Option<CachedFile> {
        let file = self.files.remove(path)?;
        for digest in &file.refs {
            if let Some(count) = self.defined.get_mut(digest) {
                *count -= 1;
                if *count == 0 {
                    self.defined.remove(digest);
                }
            }
        }
        Some(file)
    }

    /// The per-file step of a load: every file stat'ed, those that changed read and parsed (a
    /// file without errors goes to the cache), removed files dropped.
    fn refresh(&mut self, paths: &[PathBuf], now: SystemTime) -> Result<Refreshed, LoadError> {
        self.last_reads = 0;
        let mut notes = Vec::new();
        let found = expand(paths, &mut notes)?;
        let present: HashSet<&PathBuf> = found.iter().map(|f| &f.path).collect();
        let gone: Vec<PathBuf> = self
            .files
            .keys()
            .filter(|path| !present.contains(path))
            .cloned()
            .collect();
        let mut left = Vec::new();
        for path in gone {
            if let Some(file) = self.forget(&path) {
                left.push(Left {
                    objects: file.objects,
                });
            }
        }

        // Read every file that changed before parsing any, as `load` does: an unreadable file is
        // the one error reported, whatever the others hold.
        let mut files = Vec::with_capacity(found.len());
        let mut fresh = Vec::with_capacity(found.len());
        for f in &found {
            let file = &f.path;
            let unchanged = self.files.get(file).is_some_and(|c| c.is_current(file));
            if unchanged {
                fresh.push(None);
            } else {
                if let Some(previous) = self.forget(file) {
                    left.push(Left {
                        objects: previous.objects,
                    });
                }
                self.last_reads += 1;
                match read_input(f, self.limits, &mut notes)? {
                    Some(read) => fresh.push(Some(read)),
                    // Not a regular file after all: skipped, noted.
                    None => continue,
                }
            }
            files.push(file.clone());
        }

        // Parse what changed: a file without errors goes to the cache, the entries of the others
        // are assembled as they are (and the file is read again next time).
        let mut sources = Vec::with_capacity(files.len());
        let mut entered = Vec::new();
        for (file, fresh) in files.into_iter().zip(fresh) {
            let Some((name, input, stamp)) = fresh else {
                sources.push((file.display().to_string(), Source::Cached(file)));
                continue;
            };
            let parsed = objects_if_clean(parse_input(&name, &input));
            drop(input);
            let source = match (parsed, stamp) {
                (Ok(objects), Some(stamp)) => {
                    let refs = ref_digests(&objects);
                    for digest in &refs {
                        *self.defined.entry(*digest).or_insert(0) += 1;
                    }
                    let cached = CachedFile {
                        stamp,
                        racy: stamp.is_racy(now),
                        objects,
                        refs,
                    };
                    self.files.insert(file.clone(), cached);
                    entered.push(file.clone());
                    Source::Cached(file)
                }
                // stdin, read once.
                (Ok(objects), None) => {
                    Source::Uncached(objects.into_iter().map(Entry::Object).collect())
                }
                (Err(entries), _) => Source::Uncached(entries),
            };
            sources.push((name, source));
        }
        Ok(Refreshed {
            sources,
            left,
            entered,
            notes,
        })
    }
}

fn parse_documents(name: &str, text: &str) -> Result<Vec<ParsedDoc>, LoadError> {
    // The fast reader is strict (any field of the wrong type fails the whole file); it is right
    // for nearly every input. When it fails, the object-by-object reader finds the objects at
    // fault and names them, at the cost of a second parse.
    if let Ok(docs) = parse_with::<FastDoc>(name, text) {
        return Ok(docs.into_iter().map(|d| d.0).collect());
    }
    parse_with::<ParsedDoc>(name, text)
}

fn parse_with<D: for<'de> Deserialize<'de>>(name: &str, text: &str) -> Result<Vec<D>, LoadError> {
    if is_json(name, text) {
        let mut out = Vec::new();
        for v in serde_json::Deserializer::from_str(text).into_iter::<D>() {
            out.push(v.map_err(|e| json_syntax(name, "", &e))?);
        }
        return Ok(out);
    }
    crate::source::yaml::documents(text).map_err(|e| yaml_syntax(name, &e))
}

/// One document read by the fast reader: straight into lean records, items converted as they
/// are read. Anything unexpected (a field of the wrong type, a document that is not a mapping)
/// is a deserialization error, which sends the file to the object-by-object reader.
struct FastDoc(ParsedDoc);

impl<'de> Deserialize<'de> for FastDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(FastDocVisitor)
    }
}

struct FastDocVisitor;

impl<'de> Visitor<'de> for FastDocVisitor {
    type Value = FastDoc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_unit<E>(self) -> Result<FastDoc, E> {
        Ok(FastDoc(ParsedDoc::default()))
    }

    fn visit_none<E>(self) -> Result<FastDoc, E> {
        Ok(FastDoc(ParsedDoc::default()))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<FastDoc, A::Error> {
        let mut object = AnyObject::default();
        let mut items = None;
        let mut seen = crate::source::wire::KeySet::default();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            // A repeated key sends the file to the object-by-object reader, which names it.
            if !seen.insert(key.clone()) {
                return Err(serde::de::Error::custom("duplicate key"));
            }
            match key.as_ref() {
                "apiVersion" => object.api_version = map.next_value()?,
                "kind" => object.kind = map.next_value()?,
                "metadata" => object.metadata = map.next_value::<Option<AnyMeta>>()?,
                "spec" => object.spec = map.next_value::<Option<AnySpec>>()?,
                "status" => object.status = map.next_value::<Option<AnyStatus>>()?,
                "items" => items = Some(map.next_value::<FastItems>()?.0),
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        let is_list = object.kind.as_deref().is_some_and(|k| k.ends_with("List"));
        let objects = match items.filter(|_| is_list) {
            Some(items) => items,
            None => fast_convert(object, None).into_iter().collect(),
        };
        Ok(FastDoc(ParsedDoc {
            objects,
            not_an_object: false,
        }))
    }
}

/// A List's `items` for the fast reader, each converted as soon as it is read.
struct FastItems(Vec<Parsed>);

impl<'de> Deserialize<'de> for FastItems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = FastItems;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of Kubernetes objects")
            }
            fn visit_unit<E>(self) -> Result<FastItems, E> {
                Ok(FastItems(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<FastItems, A::Error> {
                let mut out = Vec::new();
                let mut i = 0;
                while let Some(item) = seq.next_element::<Option<AnyObject>>()? {
                    if let Some(parsed) = item.and_then(|o| fast_convert(o, Some(i))) {
                        out.push(parsed);
                    }
                    i += 1;
                }
                Ok(FastItems(out))
            }
        }
        d.deserialize_any(ItemsVisitor)
    }
}

fn fast_convert(object: AnyObject, item: Option<usize>) -> Option<Parsed> {
    let description = object.describe();
    let result = object.into_object()?.map_err(|error| Invalid::Field {
        object: description,
        error,
    });
    Some(Parsed { item, result })
}

/// Why one object could not be read.
#[derive(Debug)]
enum Invalid {
    NotAnObject,
    Field { object: String, error: FieldError },
}

/// One object of a document, already converted to its snapshot record.
#[derive(Debug)]
struct Parsed {
    /// The index in a List's `items`.
    item: Option<usize>,
    result: Result<Object, Invalid>,
}

/// One document, converted while it is parsed: a `kind: List` of 100,000 pods is never held as a
/// tree, only as compact records.
#[derive(Debug, Default)]
struct ParsedDoc {
    objects: Vec<Parsed>,
    not_an_object: bool,
}

impl<'de> Deserialize<'de> for ParsedDoc {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(DocVisitor)
    }
}

struct DocVisitor;

impl DocVisitor {
    fn not_an_object<E>() -> Result<ParsedDoc, E> {
        Ok(ParsedDoc {
            objects: Vec::new(),
            not_an_object: true,
        })
    }
}

impl<'de> Visitor<'de> for DocVisitor {
    type Value = ParsedDoc;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a Kubernetes object")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<ParsedDoc, A::Error> {
        let mut rest = serde_json::Map::new();
        let mut items = None;
        let mut dup = None;
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                if items.is_some() {
                    dup.get_or_insert_with(|| key.clone());
                }
                items = Some(map.next_value::<Items>()?.0);
            } else {
                let value: Checked = map.next_value()?;
                if let Some(inner) = value.dup {
                    dup.get_or_insert_with(|| path(&key, &inner));
                }
                if rest.insert(key.clone(), value.value).is_some() {
                    dup.get_or_insert(key);
                }
            }
        }
        let kind = rest.get("kind").and_then(Value::as_str).unwrap_or("");
        if let Some(mut items) = items.filter(|_| kind.ends_with("List")) {
            if let Some(key) = dup {
                items.insert(
                    0,
                    Parsed {
                        item: None,
                        result: Err(duplicate(kind.to_string(), key)),
                    },
                );
            }
            return Ok(ParsedDoc {
                objects: items,
                not_an_object: false,
            });
        }
        let checked = Checked {
            value: Value::Object(rest),
            dup,
        };
        let objects = convert_checked(&checked)
            .map(|result| Parsed { item: None, result })
            .into_iter()
            .collect();
        Ok(ParsedDoc {
            objects,
            not_an_object: false,
        })
    }

    fn visit_unit<E>(self) -> Result<ParsedDoc, E> {
        Ok(ParsedDoc::default())
    }

    fn visit_none<E>(self) -> Result<ParsedDoc, E> {
        Ok(ParsedDoc::default())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<ParsedDoc, A::Error> {
        while seq.next_element::<IgnoredAny>()?.is_some() {}
        Self::not_an_object()
    }

    fn visit_bool<E>(self, _: bool) -> Result<ParsedDoc, E> {
        Self::not_an_object()
    }

    fn visit_i64<E>(self, _: i64) -> Result<ParsedDoc, E> {
        Self::not_an_object()
    }

    fn visit_u64<E>(self, _: u64) -> Result<ParsedDoc, E> {
        Self::not_an_object()
    }

    fn visit_f64<E>(self, _: f64) -> Result<ParsedDoc, E> {
        Self::not_an_object()
    }

    fn visit_str<E>(self, _: &str) -> Result<ParsedDoc, E> {
        Self::not_an_object()
    }
}

/// A List's `items`, each converted as soon as it is parsed.
struct Items(Vec<Parsed>);

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a list of Kubernetes objects")
            }
            fn visit_unit<E>(self) -> Result<Items, E> {
                Ok(Items(Vec::new()))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                let mut out = Vec::new();
                let mut i = 0;
                while let Some(value) = seq.next_element::<Checked>()? {
                    if let Some(result) = convert_checked(&value) {
                        out.push(Parsed {
                            item: Some(i),
                            result,
                        });
                    }
                    i += 1;
                }
                Ok(Items(out))
            }
        }
        d.deserialize_any(ItemsVisitor)
    }
}

/// A JSON (or YAML) value as `serde_json::Value` reads it, with the first key that an object
/// in it repeats (its path). serde_json keeps the last of two equal keys, other readers the
/// first: `"ovn.kubernetes.io/bgp":"false", ..., "ovn.kubernetes.io/bgp":"true"` must not be
/// read as either. YAML refuses repeated keys in its parser; this refuses them in JSON.
#[derive(Debug, Default)]
struct Checked {
    value: Value,
    dup: Option<String>,
}

impl<'de> Deserialize<'de> for Checked {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }
}

struct CheckedVisitor;

impl CheckedVisitor {
    fn plain<E>(value: Value) -> Result<Checked, E> {
        Ok(Checked { value, dup: None })
    }
}

impl<'de> Visitor<'de> for CheckedVisitor {
    type Value = Checked;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Checked, E> {
        Self::plain(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Checked, E> {
        Self::plain(Value::from(v))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Checked, E> {
        Self::plain(Value::from(v))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Checked, E> {
        Self::plain(Value::from(v))
    }

    fn visit_str<E>(self, v: &str) -> Result<Checked, E> {
        Self::plain(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Checked, E> {
        Self::plain(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Checked, E> {
        Self::plain(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Checked, E> {
        Self::plain(Value::Null)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Checked, D::Error> {
        d.deserialize_any(CheckedVisitor)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Checked, A::Error> {
        let mut out = Vec::new();
        let mut dup = None;
        while let Some(item) = seq.next_element::<Checked>()? {
            if let Some(inner) = item.dup {
                dup.get_or_insert_with(|| path(&format!("[{}]", out.len()), &inner));
            }
            out.push(item.value);
        }
        Ok(Checked {
            value: Value::Array(out),
            dup,
        })
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Checked, A::Error> {
        let mut out = serde_json::Map::new();
        let mut dup = None;
        while let Some(key) = map.next_key::<String>()? {
            let item: Checked = map.next_value()?;
            if let Some(inner) = item.dup {
                dup.get_or_insert_with(|| path(&key, &inner));
            }
            if out.insert(key.clone(), item.value).is_some() {
                dup.get_or_insert(key);
            }
        }
        Ok(Checked {
            value: Value::Object(out),
            dup,
        })
    }
}

/// `outer` and a path inside it: `metadata.annotations`, `containers[0]`.
fn path(outer: &str, inner: &str) -> String {
    if inner.starts_with('[') {
        format!("{outer}{inner}")
    } else {
        format!("{outer}.{inner}")
    }
}

fn duplicate(object: String, key: String) -> Invalid {
    Invalid::Field {
        object,
        error: FieldError {
            field: key,
            message: "duplicate key: an object may hold a key once (readers disagree on which of two wins; YAML refuses it too)".to_string(),
        },
    }
}

/// [`convert`] for a value that may repeat a key: an object of a kind bgpgen reads that does is
/// refused, naming the key; a repeated `kind` or `apiVersion` is refused whatever the kind.
fn convert_checked(checked: &Checked) -> Option<Result<Object, Invalid>> {
    let Some(key) = &checked.dup else {
        return convert(&checked.value);
    };
    let value = &checked.value;
    let kind = value.get("kind").and_then(Value::as_str).unwrap_or("");
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    let top = key == "kind" || key == "apiVersion";
    if !top && !AnyObject::is_used(api_version, kind) {
        return convert(value);
    }
    Some(Err(duplicate(
        describe(if kind.is_empty() { "object" } else { kind }, value),
        key.clone(),
    )))
}

/// `Pod default/web-1` for messages; best effort, as the object may be malformed.
fn describe(kind: &str, value: &Value) -> String {
    let meta = value.get("metadata");
    // A name that YAML read as another type (`name: no` is a boolean) is shown as written.
    let name = match meta.and_then(|m| m.get("name")) {
        Some(Value::String(s)) => s.clone(),
        Some(other) => other.to_string(),
        None => "<unnamed>".to_string(),
    };
    match meta
        .and_then(|m| m.get("namespace"))
        .and_then(Value::as_str)
    {
        Some(ns) => format!("{kind} {ns}/{name}"),
        None => format!("{kind} {name}"),
    }
}

/// Converts one object into its snapshot record: `None` for kinds the rules do not use and for
/// mappings without `kind` (a values or options file), an error for a used kind that is malformed.
fn convert(value: &Value) -> Option<Result<Object, Invalid>> {
    if value.is_null() {
        return None;
    }
    let Some(kind) = value.get("kind").and_then(Value::as_str) else {
        return (!value.is_object()).then_some(Err(Invalid::NotAnObject));
    };
    let api_version = value
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or("");
    if !AnyObject::is_used(api_version, kind) {
        return None;
    }
    let invalid = |error| Invalid::Field {
        object: describe(kind, value),
        error,
    };
    let object = match serde_path_to_error::deserialize::<_, AnyObject>(value) {
        Ok(o) => o,
        Err(e) => {
            let path = e.path().to_string();
            // A parser's message quotes the value it refused: not the value of a secret.
            let message = if path.to_ascii_lowercase().contains("password") {
                "invalid value (not shown: the field holds a secret)".to_string()
            } else {
                e.into_inner().to_string()
            };
            return Some(Err(invalid(FieldError {
                field: if path == "." { "(object)".into() } else { path },
                message,
            })));
        }
    };
    Some(object.into_object()?.map_err(invalid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgpgen_bench::synth::{self, Format, Spec};
    use std::fs::File;

    /// Every object of every document, with its item index, or the error text.
    fn objects(docs: Vec<ParsedDoc>) -> Vec<(Option<usize>, Result<Object, String>)> {
        docs.into_iter()
            .flat_map(|d| d.objects)
            .map(|p| (p.item, p.result.map_err(|e| format!("{e:?}"))))
            .collect()
    }

    #[test]
    fn the_fast_reader_and_the_object_by_object_reader_agree() {
        for seed in 1..=4 {
            let spec = Spec {
                nodes: 5,
                pods: 300,
                services: 40,
                subnets: 6,
                eips: 30,
                seed,
                dual_stack: seed % 2 == 0,
                ..Spec::default()
            };
            let cluster = synth::generate(&spec).unwrap();
            for format in [Format::Json, Format::Yaml] {
                for (name, text) in cluster.files(format) {
                    let fast = parse_with::<FastDoc>(&name, &text)
                        .unwrap_or_else(|e| panic!("{name}: the fast reader failed: {e}"));
                    let slow = parse_with::<ParsedDoc>(&name, &text).unwrap();
                    let fast = objects(fast.into_iter().map(|d| d.0).collect());
                    assert!(!fast.is_empty(), "{name}");
                    assert_eq!(fast, objects(slow), "seed {seed}, {name}");
                }
            }
        }
    }

    #[test]
    fn a_streamed_json_file_gives_what_the_whole_text_gives() {
        let dir = tempfile::tempdir().unwrap();
        let spec = Spec {
            nodes: 4,
            pods: 200,
            services: 20,
            subnets: 5,
            eips: 12,
            ..Spec::default()
        };
        for (name, text) in synth::generate(&spec).unwrap().files(Format::Json) {
            let path = dir.path().join(&name);
            std::fs::write(&path, &text).unwrap();
            let streamed = objects(stream_documents(&name, &File::open(&path).unwrap()).unwrap());
            assert_eq!(
                streamed,
                objects(parse_documents(&name, &text).unwrap()),
                "{name}"
            );
        }
        // A List whose own metadata has an odd shape: its items still count.
        let path = dir.path().join("odd.json");
        std::fs::write(
            &path,
            r#"{"kind":"List","metadata":"odd","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"}}]}"#,
        )
        .unwrap();
        let streamed = objects(stream_documents("odd.json", &File::open(&path).unwrap()).unwrap());
        assert_eq!(streamed.len(), 1);
        // A single object, and an object whose `items` are not a List's.
        for text in [
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p","namespace":"d"}}"#,
            r#"{"apiVersion":"v1","kind":"Pod","metadata":{"name":"p"},"items":[{"kind":"Pod"}]}"#,
        ] {
            let path = dir.path().join("one.json");
            std::fs::write(&path, text).unwrap();
            assert_eq!(
                objects(stream_documents("one.json", &File::open(&path).unwrap()).unwrap()),
                objects(parse_documents("one.json", text).unwrap())
            );
        }
    }

    #[test]
    fn a_broken_streamed_file_is_reported_without_reading_it_whole() {
        let dir = tempfile::tempdir().unwrap();
        for (text, expected) in [
            // An item of the wrong type: named by the object-by-object reader, alone.
            (
                r#"{"kind":"List","apiVersion":"v1","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a"},"spec":{"nodeName":1}}]}"#,
                "b.json: document 1, items[0]: Pod a: spec.nodeName: invalid type: integer `1`, expected a string",
            ),
            (
                r#"{"kind":"List","items":[{"apiVersion":"v1",}]}"#,
                "b.json: not valid JSON: items[0]: trailing comma (line 1, column 20 of the item)",
            ),
            (
                "[1, 2]",
                "b.json: not valid JSON: not a single JSON object (a JSON file above 16 MiB is read as a stream and must hold one object, e.g. a List)",
            ),
            // A repeated key in an item, in the List, in a document that is not a List.
            (
                r#"{"kind":"List","items":[{"apiVersion":"v1","kind":"Pod","metadata":{"name":"a","annotations":{"ovn.kubernetes.io/bgp":"false","x":"y","ovn.kubernetes.io/bgp":"true"}}}]}"#,
                "b.json: document 1, items[0]: Pod a: metadata.annotations.ovn.kubernetes.io/bgp: duplicate key",
            ),
            (
                r#"{"kind":"List","items":[],"kind":"List"}"#,
                "b.json: not valid JSON: duplicate key \"kind\"",
            ),
        ] {
            let path = dir.path().join("b.json");
            std::fs::write(&path, text).unwrap();
            let name = "b.json";
            let e = match stream_documents(name, &File::open(&path).unwrap()) {
                Ok(docs) => entries(name, Ok(docs))
                    .find_map(|e| match e {
                        Entry::Error(e) => Some(e.to_string()),
                        Entry::Object(_) => None,
                    })
                    .unwrap_or_else(|| panic!("{text}: accepted")),
                Err(e) => e.to_string(),
            };
            assert!(e.starts_with(expected), "{text}\n{e}");
        }
    }

    #[test]
    fn a_foreign_kind_that_trips_the_fast_reader_costs_time_not_objects() {
        // `status.ready` is a boolean on an IptablesEIP; this other kind has a list there.
        let text = "apiVersion: v1\nkind: List\nitems:\n\
            - {apiVersion: example.com/v1, kind: Widget, metadata: {name: w}, status: {ready: [1]}}\n\
            - {apiVersion: v1, kind: Pod, metadata: {name: p, namespace: d}, spec: {nodeName: n1}}\n";
        assert!(parse_with::<FastDoc>("l.yaml", text).is_err());
        let snapshot = load_texts([("l.yaml", text)]).unwrap();
        assert_eq!(snapshot.pods.len(), 1);
    }

    #[test]
    fn unquoted_numbers_are_not_strings_but_quoted_ones_are() {
        let quoted = "apiVersion: v1\nkind: Pod\nmetadata: {name: a, namespace: d}\nspec: {nodeName: \"1\"}\n";
        let snapshot = load_texts([("a.yaml", quoted)]).unwrap();
        assert_eq!(
            snapshot.pods.values().next().unwrap().node.as_deref(),
            Some("1")
        );
        let bare = quoted.replace("\"1\"", "1");
        let e = load_texts([("a.yaml", bare.as_str())]).unwrap_err();
        assert!(e.to_string().contains("spec.nodeName: invalid type"), "{e}");
    }

    /// A directory the cache and `load` read side by side.
    struct Dir(tempfile::TempDir);

    impl Dir {
        fn new() -> Dir {
            Dir(tempfile::tempdir().unwrap())
        }
        fn put(&self, name: &str, text: &str) {
            let path = self.0.path().join(name);
            if path.exists() {
                // Past the file system's clock tick (a few ms), so that the rewrite shows in the
                // timestamps: the tests pretend to load long after, past the racy window.
                std::thread::sleep(Duration::from_millis(20));
            }
            std::fs::write(path, text).unwrap();
        }
        fn paths(&self) -> Vec<PathBuf> {
            vec![self.0.path().to_path_buf()]
        }
        /// Loads through the cache as if `later` after now (so that files written by the test
        /// are past the racy window) and checks the result against `load`: same snapshot, or
        /// the same error text. Returns the number of files the cache read.
        fn check(&self, cache: &mut ManifestCache, later: Duration) -> usize {
            let cached = cache.load_at(&self.paths(), SystemTime::now() + later);
            match (cached, load(&self.paths())) {
                (Ok(a), Ok(b)) => assert_eq!(a, b),
                (Err(a), Err(b)) => assert_eq!(a.to_string(), b.to_string()),
                (a, b) => panic!("cache: {a:?}\nload: {b:?}"),
            }
            cache.last_reads()
        }
    }

    const LATER: Duration = Duration::from_secs(60);

    fn pod(name: &str, node: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  name: {name}\n  namespace: d\n  annotations: {{ovn.kubernetes.io/ip_address: 10.16.0.9}}\nspec: {{nodeName: {node}}}\n"
        )
    }

    fn subnet(cidr: &str) -> String {
        format!(
            "apiVersion: kubeovn.io/v1\nkind: Subnet\nmetadata: {{name: s}}\nspec: {{cidrBlock: \"{cidr}\"}}\n"
        )
    }

    #[test]
    fn the_cache_reads_only_what_changed_and_agrees_with_load() {
        let dir = Dir::new();
        let spec = Spec {
            nodes: 3,
            pods: 200,
            services: 20,
            subnets: 4,
            eips: 10,
            ..Spec::default()
        };
        let cluster = synth::generate(&spec).unwrap();
        let files = cluster.files(Format::Json);
        for (name, text) in &files {
            dir.put(name, text);
        }
        dir.put("extra.yaml", &pod("extra", "n1"));
        let mut cache = ManifestCache::new();
        assert_eq!(dir.check(&mut cache, LATER), files.len() + 1);
        assert_eq!(cache.len(), files.len() + 1);

        // No change: nothing read.
        assert_eq!(dir.check(&mut cache, LATER), 0);

        // One file modified, to the same length (only the timestamps tell).
        dir.put("extra.yaml", &pod("extra", "n2"));
        assert_eq!(dir.check(&mut cache, LATER), 1);
        assert_eq!(dir.check(&mut cache, LATER), 0);

        // A file added, then removed.
        dir.put("more.yml", &pod("more", "n1"));
        assert_eq!(dir.check(&mut cache, LATER), 1);
        std::fs::remove_file(dir.0.path().join("more.yml")).unwrap();
        assert_eq!(dir.check(&mut cache, LATER), 0);
        assert_eq!(cache.len(), files.len() + 1);

        // Replaced by rename (as editors and ConfigMap mounts do): another inode.
        let staged = dir.0.path().join(".extra.yaml.tmp");
        std::fs::write(&staged, pod("extra", "n3")).unwrap();
        std::fs::rename(&staged, dir.0.path().join("extra.yaml")).unwrap();
        assert_eq!(dir.check(&mut cache, LATER), 1);
    }

    #[test]
    fn a_broken_file_is_read_again_until_fixed() {
        let dir = Dir::new();
        dir.put("a.yaml", &pod("a", "n1"));
        dir.put("b.yaml", &pod("b", "n1"));
        let mut cache = ManifestCache::new();
        assert_eq!(dir.check(&mut cache, LATER), 2);

        // Broken syntax, then a field of the wrong type alongside: both reported, as `load` does.
        dir.put("b.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: [b\n");
        assert_eq!(dir.check(&mut cache, LATER), 1);
        dir.put("c.yaml", &pod("c", "[n1]"));
        assert_eq!(dir.check(&mut cache, LATER), 2);
        assert_eq!(cache.len(), 1);
        // Not cached: read again even though unchanged.
        assert_eq!(dir.check(&mut cache, LATER), 2);

        dir.put("b.yaml", &pod("b", "n2"));
        dir.put("c.yaml", &pod("c", "n1"));
        assert_eq!(dir.check(&mut cache, LATER), 2);
        assert!(
            cache
                .load_at(&dir.paths(), SystemTime::now() + LATER)
                .is_ok()
        );
        assert_eq!(cache.last_reads(), 0);
    }

    #[test]
    fn a_conflict_across_cached_files_is_reported_like_load_does() {
        let dir = Dir::new();
        dir.put("a.yaml", &subnet("10.16.0.0/16"));
        dir.put("b.yaml", &subnet("10.16.0.0/16"));
        let mut cache = ManifestCache::new();
        assert_eq!(dir.check(&mut cache, LATER), 2);

        // The conflict is located at the later file whichever file changed.
        dir.put("a.yaml", &subnet("10.17.0.0/16"));
        assert_eq!(dir.check(&mut cache, LATER), 1);
        let e = cache
            .load_at(&dir.paths(), SystemTime::now() + LATER)
            .unwrap_err();
        assert!(
            e.to_string()
                .ends_with("b.yaml: document 1: Subnet/s is defined twice with different contents"),
            "{e}"
        );
        // Each file is fine on its own, so both stay cached while they conflict.
        assert_eq!(cache.last_reads(), 0);

        dir.put("b.yaml", &subnet("10.17.0.0/16"));
        assert_eq!(dir.check(&mut cache, LATER), 1);
        assert!(
            cache
                .load_at(&dir.paths(), SystemTime::now() + LATER)
                .is_ok()
        );
    }

    #[test]
    fn a_file_changed_within_the_racy_window_is_read_again() {
        let dir = Dir::new();
        dir.put("a.yaml", &pod("a", "n1"));
        let mut cache = ManifestCache::new();
        assert_eq!(dir.check(&mut cache, Duration::ZERO), 1);
        // Just written: a same-length write in the same clock tick would leave the same stamp, so
        // the file is not trusted yet.
        assert_eq!(dir.check(&mut cache, Duration::ZERO), 1);
        // Once the window has passed, read one last time, then trusted.
        assert_eq!(dir.check(&mut cache, LATER), 1);
        assert_eq!(dir.check(&mut cache, LATER), 0);

        let now = SystemTime::now();
        let stamp = |secs_ago: u64| {
            let t = (now - Duration::from_secs(secs_ago))
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap();
            let t = (t.as_secs() as i64, i64::from(t.subsec_nanos()));
            Stamp {
                dev: 1,
                ino: 1,
                len: 1,
                mtime: (0, 0),
                ctime: t,
            }
        };
        assert!(stamp(0).is_racy(now));
        assert!(stamp(1).is_racy(now));
        assert!(!stamp(3).is_racy(now));
    }

    #[test]
    fn missing_and_duplicate_paths_behave_as_in_load() {
        let dir = Dir::new();
        dir.put("a.yaml", &pod("a", "n1"));
        let file = dir.0.path().join("a.yaml");
        let mut cache = ManifestCache::new();
        let twice = [file.clone(), file.clone()];
        assert_eq!(
            cache.load_at(&twice, SystemTime::now() + LATER).unwrap(),
            load(&twice).unwrap()
        );
        let missing = [file, dir.0.path().join("missing.yaml")];
        assert_eq!(
            cache.load(&missing).unwrap_err().to_string(),
            load(&missing).unwrap_err().to_string()
        );
    }

    /// `BGPGEN_CACHE_BENCH=/tmp/cache-bench/cluster cargo test --release --lib cache_reload_time
    /// -- --ignored --nocapture`, on a directory made by `bgpgen-bench synth --pods 100000`.
    #[test]
    #[ignore]
    fn cache_reload_time() {
        let dir = PathBuf::from(
            std::env::var("BGPGEN_CACHE_BENCH").unwrap_or("/tmp/cache-bench/cluster".into()),
        );
        let paths = vec![dir.clone()];
        let small = dir.join("zz-one-pod.yaml");
        let _ = std::fs::remove_file(&small);
        let time = |what: &str, f: &mut dyn FnMut() -> Snapshot| {
            let start = std::time::Instant::now();
            let s = f();
            println!(
                "{what:<48} {:>8.1?}  ({} pods)",
                start.elapsed(),
                s.pods.len()
            );
        };
        time("load (whole directory, as before)", &mut || {
            load(&paths).unwrap()
        });
        let mut cache = ManifestCache::new();
        time("cache: first load", &mut || cache.load(&paths).unwrap());
        time("cache: no change", &mut || cache.load(&paths).unwrap());
        std::fs::write(&small, pod("zz-one", "n1")).unwrap();
        time("load after adding a one-pod file (before)", &mut || {
            load(&paths).unwrap()
        });
        time("cache: after adding a one-pod file", &mut || {
            cache.load(&paths).unwrap()
        });
        std::fs::write(&small, pod("zz-one", "n2")).unwrap();
        time("cache: after modifying it", &mut || {
            cache.load(&paths).unwrap()
        });
        std::fs::remove_file(&small).unwrap();
        time("cache: after removing it", &mut || {
            cache.load(&paths).unwrap()
        });
    }
}
