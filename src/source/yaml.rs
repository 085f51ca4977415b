//! The one place that knows which YAML library bgpgen uses (serde-saphyr; the README's dependency
//! notes say why), so that swapping it touches one file.

use serde::Serialize;
use serde::de::DeserializeOwned;

pub type Error = serde_saphyr::Error;

/// Parser options for manifests. serde-saphyr's default budget (250,000 nodes, 1,024 documents for
/// the whole input) rejects clusters above ~900 pods, so the size limits are lifted; the alias and
/// anchor limits stay, as they guard against "billion laughs" documents.
fn options() -> serde_saphyr::Options {
    // Both structs are non-exhaustive: start from the defaults and change what matters.
    let mut budget = serde_saphyr::Budget::default();
    budget.max_reader_input_bytes = None;
    budget.max_events = usize::MAX;
    budget.max_documents = usize::MAX;
    budget.max_nodes = usize::MAX;
    budget.max_total_scalar_bytes = usize::MAX;
    budget.max_total_comment_bytes = usize::MAX;
    let mut options = serde_saphyr::Options::default();
    options.budget = Some(budget);
    // Comments are never used; not capturing them saves time on large files.
    options.emit_comments = false;
    // No source snippet in errors: the lines around a mistake can hold a password (an options
    // file's `auth-password:`, a `kind: Secret` next to the manifests), and errors are logged and
    // served on /readyz. The line and column are enough to find it.
    options.with_snippet = false;
    options
}

/// Deserializes one YAML document.
pub fn from_str<T: DeserializeOwned>(text: &str) -> Result<T, Error> {
    serde_saphyr::from_str_with_options(text, options())
}

/// Every document of a multi-document YAML stream, empty documents skipped. `T` should be compact
/// (it is built while its document is parsed): the documents' text trees are never all in memory.
///
/// An unquoted scalar that reads as a number or boolean (`nodeName: 1`, `bgp: true`) is not
/// accepted as a string: kubectl would send it as a number or boolean and the API server would
/// refuse the object, so bgpgen refuses it too.
pub fn documents<T: DeserializeOwned>(text: &str) -> Result<Vec<T>, Error> {
    let mut options = options();
    options.no_schema = true;
    serde_saphyr::from_multiple_with_options(text, options)
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

/// serde-saphyr's user-facing messages, with the ones that speak to a programmer (which
/// parser option to set) reworded for the person who wrote the file.
struct Messages;

impl serde_saphyr::MessageFormatter for Messages {
    fn format_message<'a>(&self, err: &'a Error) -> std::borrow::Cow<'a, str> {
        match err {
            Error::DuplicateMappingKey { key: Some(k), .. } => std::borrow::Cow::Owned(format!(
                "key {} appears twice in one mapping (a key may appear once: readers disagree on which value wins)",
                crate::text::quote(k)
            )),
            Error::DuplicateMappingKey { key: None, .. } => std::borrow::Cow::Borrowed(
                "a key appears twice in one mapping (a key may appear once: readers disagree on which value wins)",
            ),
            other => serde_saphyr::MessageFormatter::format_message(
                &serde_saphyr::UserMessageFormatter,
                other,
            ),
        }
    }
}

/// An error as `(line, column)` (1-based, when known) and the message without its location, so
/// that the caller can cite `FILE:LINE:COLUMN:`.
pub fn describe(err: &Error) -> (Option<(u64, u64)>, String) {
    let at = err
        .location()
        .filter(|l| l.line() > 0)
        .map(|l| (l.line(), l.column()));
    let message = serde_saphyr::MessageFormatter::format_message(&Messages, err).into_owned();
    (at, message)
}

/// `FILE:LINE:COLUMN: message` (or `FILE: message` without a location).
pub fn cite(file: &str, err: &Error) -> String {
    match describe(err) {
        (Some((line, column)), message) => format!("{file}:{line}:{column}: {message}"),
        (None, message) => format!("{file}: {message}"),
    }
}
