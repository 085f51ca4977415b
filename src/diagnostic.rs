//! Diagnostics: what the compiler wants a human to know about the input. They are part of the
//! intent (so reviews see them) and are printed on stderr as `warning: Subnet/x: ...`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::text;

/// At most this many characters name the object of a diagnostic (Kubernetes names are at most
/// 253; manifests written by hand can hold anything).
const OBJECT_CHARS: usize = 600;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        })
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Diagnostic {
    pub level: Level,
    /// `Kind/[namespace/]name`, or `options` for speaker options.
    pub object: String,
    pub message: String,
}

impl Diagnostic {
    /// The object and message are escaped and bounded here, once: both may hold text from the
    /// input (names, annotation values, a subnet's status), and a diagnostic is printed on stderr,
    /// logged, served and kept in the intent.
    pub fn new(level: Level, object: impl fmt::Display, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level,
            object: text::clip(&object.to_string(), OBJECT_CHARS),
            message: text::clip(&message.into(), text::MESSAGE_CHARS * 2),
        }
    }

    pub fn info(object: impl fmt::Display, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Level::Info, object, message)
    }

    pub fn warning(object: impl fmt::Display, message: impl Into<String>) -> Diagnostic {
        Diagnostic::new(Level::Warning, object, message)
    }
}

impl fmt::Display for Diagnostic {
    /// Escaped again: a diagnostic read back from an intent file was not built by [`Diagnostic::new`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {}: {}",
            self.level,
            text::escape(&self.object),
            text::escape(&self.message)
        )
    }
}
