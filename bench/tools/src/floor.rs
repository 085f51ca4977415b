//! The floors `bgpgen`'s reading of manifests is measured against (BENCHMARKS.md section 1):
//! the least any reader of the same files pays. Each file is read whole into memory, as the
//! fastest reader would, then every document is parsed and thrown away.

use std::path::PathBuf;

use bgpgen::source::manifests::{LoadError, expand_paths};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_json::Value;

/// What each document is parsed into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Floor {
    /// Syntax only (`serde::de::IgnoredAny`): every byte scanned, nothing built.
    Syntax,
    /// A generic tree per document (`serde_json::Value`): what a reader without lean records
    /// pays.
    Tree,
    /// Syntax only with sonic-rs (SIMD, `IgnoredAny` through its serde deserializer).
    SonicSyntax,
    /// Syntax only with simd-json (SIMD: its tape of the document, nothing else built).
    SimdJsonSyntax,
}

#[derive(Debug, thiserror::Error)]
pub enum FloorError {
    #[error(transparent)]
    Load(#[from] LoadError),
    #[error("{file}: {source}")]
    Read {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },
}

/// Reads every manifest named by `paths` (files or directories, as `bgpgen -f` takes them) and
/// parses each document as `floor` says. Returns the number of documents (a List counts as one).
pub fn check(paths: &[PathBuf], floor: Floor) -> Result<usize, FloorError> {
    let mut documents = 0;
    for path in expand_paths(paths)? {
        let file = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| FloorError::Read {
            file: file.clone(),
            source,
        })?;
        let json = file.ends_with(".json");
        documents += match (json, floor) {
            (true, Floor::Syntax) => count_json::<IgnoredAny>(&text),
            (true, Floor::Tree) => count_json::<Value>(&text),
            (true, Floor::SonicSyntax) => count_sonic(&text),
            (true, Floor::SimdJsonSyntax) => count_simd_json(text.into_bytes()),
            // The SIMD floors are for JSON; YAML has no SIMD reader.
            (false, Floor::SonicSyntax | Floor::SimdJsonSyntax) => count_yaml::<IgnoredAny>(&text),
            (false, Floor::Syntax) => count_yaml::<IgnoredAny>(&text),
            (false, Floor::Tree) => count_yaml::<Value>(&text),
        }
        .map_err(|message| FloorError::Syntax { file, message })?;
    }
    Ok(documents)
}

/// The number of JSON documents in `text`, each read as a `T` and dropped.
fn count_json<T: for<'de> Deserialize<'de>>(text: &str) -> Result<usize, String> {
    serde_json::Deserializer::from_str(text)
        .into_iter::<T>()
        .try_fold(0, |n, doc| doc.map(|_| n + 1))
        .map_err(|e| format!("invalid JSON: {e}"))
}

fn count_yaml<T: serde::de::DeserializeOwned>(text: &str) -> Result<usize, String> {
    bgpgen::source::yaml::documents::<T>(text)
        .map(|d| d.len())
        .map_err(|e| e.to_string())
}

/// One document (kubectl's List or an object) per file in the generated clusters; sonic-rs reads
/// one value per call.
fn count_sonic(text: &str) -> Result<usize, String> {
    sonic_rs::from_str::<IgnoredAny>(text)
        .map(|_| 1)
        .map_err(|e| format!("invalid JSON: {e}"))
}

fn count_simd_json(mut bytes: Vec<u8>) -> Result<usize, String> {
    simd_json::to_tape(&mut bytes)
        .map(|tape| usize::from(!tape.0.is_empty()))
        .map_err(|e| format!("invalid JSON: {e}"))
}
