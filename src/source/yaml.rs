//! The one place that knows which YAML library bgpgen uses (see the README's dependency notes for
//! why serde-saphyr), so that swapping it touches one file.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub type Error = serde_saphyr::Error;

/// Deserializes one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str(text)
}

/// Every document of a multi-document YAML stream, empty documents skipped.
pub fn documents(text: &str) -> Result<Vec<serde_json::Value>, Error> {
    serde_saphyr::from_multiple(text)
}

/// Serializes a value as a YAML document.
pub fn to_string<T: Serialize>(value: &T) -> String {
    // Serializing JSON-like values (maps, lists, strings, numbers) cannot fail.
    let mut text = serde_saphyr::to_string(value).unwrap_or_default();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    text
}
