//! Manifest files as a source: `-f PATH` (files, directories, `-` for stdin), multi-document
//! YAML or JSON, `kind: List`. Objects of kinds the rules do not use are ignored; a broken document
//! or a used object with wrong field types is an error naming the file, document and object.

use std::fmt;
use std::io::Read;
use std::path::{Path, PathBuf};

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde_json::Value;
use thiserror::Error;

use crate::snapshot::{FieldError, Object, Origin, Snapshot};
use crate::source::wire::{AnyMeta, AnyObject, AnySpec, AnyStatus};

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
        write!(f, "{}: document {}", self.file, self.document)?;
        if let Some(i) = self.item {
            write!(f, ", items[{i}]")?;
        }
        Ok(())
    }
}

#[derive(Debug, Error)]
pub enum LoadError {
    #[error("{path}: {source}")]
    Io {
        path: String,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: not valid YAML: {message}")]
    Syntax { file: String, message: String },
    #[error("{location}: {message}")]
    Document { location: Location, message: String },
    #[error("{location}: {object}: {error}")]
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
    let mut out = Vec::new();
    for p in paths {
        if p.as_os_str() == "-" {
            out.push(p.clone());
        } else if p.is_dir() {
            walk(p, &mut out)?;
        } else if p.exists() {
            out.push(p.clone());
        } else {
            return Err(LoadError::Io {
                path: p.display().to_string(),
                source: std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no such file or directory",
                ),
            });
        }
    }
    Ok(out)
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
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
        if path.is_dir() {
            walk(&path, out)?;
        } else if matches!(
            path.extension().and_then(|e| e.to_str()),
            Some("yaml" | "yml" | "json")
        ) {
            out.push(path);
        }
    }
    Ok(())
}

/// Reads every manifest named by `paths` into a snapshot.
pub fn load(paths: &[PathBuf]) -> Result<Snapshot, LoadError> {
    let inputs = read_all(paths)?;
    load_texts(inputs.iter().map(|(n, t)| (n.as_str(), t.as_str())))
}

/// Reads every manifest named by `paths` and checks its syntax only, keeping nothing: the floor
/// any reader of these files pays, which `load` and `compile` are measured against. Returns the
/// number of documents (a List counts as one).
pub fn check_syntax(paths: &[PathBuf]) -> Result<usize, LoadError> {
    let mut documents = 0;
    for (name, text) in read_all(paths)? {
        let syntax = |message: String| LoadError::Syntax {
            file: name.clone(),
            message,
        };
        documents += if is_json(&name, &text) {
            serde_json::Deserializer::from_str(&text)
                .into_iter::<IgnoredAny>()
                .try_fold(0, |n, doc| doc.map(|_| n + 1))
                .map_err(|e| syntax(format!("invalid JSON: {e}")))?
        } else {
            crate::source::yaml::documents::<IgnoredAny>(&text)
                .map_err(|e| syntax(e.to_string()))?
                .len()
        };
    }
    Ok(documents)
}

/// `(display name, text)` of every file named by `paths` (`-` is stdin).
fn read_all(paths: &[PathBuf]) -> Result<Vec<(String, String)>, LoadError> {
    let files = expand_paths(paths)?;
    let mut inputs = Vec::with_capacity(files.len());
    for file in files {
        let (name, text) = if file.as_os_str() == "-" {
            let mut text = String::new();
            std::io::stdin()
                .read_to_string(&mut text)
                .map_err(|source| LoadError::Io {
                    path: "<stdin>".into(),
                    source,
                })?;
            ("<stdin>".to_string(), text)
        } else {
            let text = std::fs::read_to_string(&file).map_err(|source| LoadError::Io {
                path: file.display().to_string(),
                source,
            })?;
            (file.display().to_string(), text)
        };
        inputs.push((name, text));
    }
    Ok(inputs)
}

/// JSON is valid YAML, but serde_json is faster and its errors are phrased for JSON.
fn is_json(name: &str, text: &str) -> bool {
    name.ends_with(".json") || (name == "<stdin>" && text.trim_start().starts_with('{'))
}

/// Parses manifests already in memory: `(file name, text)` pairs. Pure, for tests and benchmarks.
pub fn load_texts<'a>(
    inputs: impl IntoIterator<Item = (&'a str, &'a str)>,
) -> Result<Snapshot, LoadError> {
    let mut snapshot = Snapshot::new(Origin::Manifests);
    let mut errors = Vec::new();
    for (name, text) in inputs {
        let documents = match parse_documents(name, text) {
            Ok(d) => d,
            Err(e) => {
                errors.push(e);
                continue;
            }
        };
        for (index, doc) in documents.into_iter().enumerate() {
            let location = Location {
                file: name.to_string(),
                document: index + 1,
                item: None,
            };
            if doc.not_an_object {
                errors.push(LoadError::Document {
                    location,
                    message:
                        "not a Kubernetes object (expected a mapping with apiVersion and kind)"
                            .into(),
                });
                continue;
            }
            for parsed in doc.objects {
                let location = Location {
                    item: parsed.item,
                    ..location.clone()
                };
                match parsed.result {
                    Ok(object) => {
                        if let Err(conflict) = snapshot.insert_new(object) {
                            errors.push(LoadError::Document {
                                location,
                                message: conflict.to_string(),
                            });
                        }
                    }
                    Err(Invalid::NotAnObject) => errors.push(LoadError::Document {
                        location,
                        message:
                            "not a Kubernetes object (expected a mapping with apiVersion and kind)"
                                .into(),
                    }),
                    Err(Invalid::Field { object, error }) => errors.push(LoadError::Object {
                        location,
                        object,
                        error,
                    }),
                }
            }
        }
    }
    match errors.len() {
        0 => Ok(snapshot),
        1 => Err(errors.remove(0)),
        _ => Err(LoadError::Many(ManyErrors(errors))),
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
            out.push(v.map_err(|e| LoadError::Syntax {
                file: name.to_string(),
                message: format!("invalid JSON: {e}"),
            })?);
        }
        return Ok(out);
    }
    crate::source::yaml::documents(text).map_err(|e| LoadError::Syntax {
        file: name.to_string(),
        message: e.to_string(),
    })
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
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
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
        while let Some(key) = map.next_key::<String>()? {
            if key == "items" {
                items = Some(map.next_value::<Items>()?.0);
            } else {
                let value: Value = map.next_value()?;
                rest.insert(key, value);
            }
        }
        let kind = rest.get("kind").and_then(Value::as_str).unwrap_or("");
        if let Some(items) = items.filter(|_| kind.ends_with("List")) {
            return Ok(ParsedDoc {
                objects: items,
                not_an_object: false,
            });
        }
        let objects = convert(&Value::Object(rest))
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
                while let Some(value) = seq.next_element::<Value>()? {
                    if let Some(result) = convert(&value) {
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
            return Some(Err(invalid(FieldError {
                field: if path == "." { "(object)".into() } else { path },
                message: e.into_inner().to_string(),
            })));
        }
    };
    Some(object.into_object()?.map_err(invalid))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::synth::{self, Format, Spec};

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
}
