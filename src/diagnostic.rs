//! Diagnostics: what the compiler wants a human to know about the input. They are part of the
//! intent (so reviews see them) and are printed on stderr as `warning: Subnet/x: ...`.

use std::fmt;

use serde::{Deserialize, Serialize};

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
    pub fn new(level: Level, object: impl fmt::Display, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            level,
            object: object.to_string(),
            message: message.into(),
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
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}: {}", self.level, self.object, self.message)
    }
}
