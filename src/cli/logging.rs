//! Log set-up for the commands that log (`run`, `apply`): the level (`--log-level`, `-q`,
//! kube-ovn's `-v N`, `RUST_LOG`) and the line format (`--log-format text|json`).
//!
//! Text lines are `TIME LEVEL target: message key=value ...` with logfmt quoting: a value holding
//! a space, `=`, a quote or a control character is quoted and escaped, so every event is one line
//! that a logfmt parser splits right (an error quoting a file, or several errors, stays one
//! line). JSON lines are one object per event, with the fields at the top level.

use std::fmt;

use clap::{Args, ValueEnum};
use tracing::field::{Field, Visit};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::format::Writer;

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// One line per event: time, level, target, message, then key=value fields (logfmt quoting).
    Text,
    /// One JSON object per line: timestamp, level, target, message and every field.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, ValueEnum)]
pub enum LogLevel {
    Error,
    Warn,
    Info,
    Debug,
    Trace,
}

impl LogLevel {
    fn as_str(self) -> &'static str {
        match self {
            LogLevel::Error => "error",
            LogLevel::Warn => "warn",
            LogLevel::Info => "info",
            LogLevel::Debug => "debug",
            LogLevel::Trace => "trace",
        }
    }

    /// kube-ovn-speaker's klog verbosity (`-v N`) as a level: klog logs everything up to info at
    /// `-v 0`, and kube-ovn's own detail sits at 3 (`klog.V(3)`) and 5 (`klog.V(5)`).
    pub fn from_klog_verbosity(v: i32) -> LogLevel {
        match v {
            i32::MIN..=2 => LogLevel::Info,
            3..=4 => LogLevel::Debug,
            _ => LogLevel::Trace,
        }
    }

    /// The filter for this level: bgpgen's own events at this level, the libraries' (kube, hyper,
    /// tonic) at most at info, whose debug output would drown bgpgen's.
    fn directives(self) -> String {
        if self <= LogLevel::Info {
            self.as_str().to_string()
        } else {
            format!("info,bgpgen={}", self.as_str())
        }
    }
}

/// Flags shared by every command (global: they may come before or after the subcommand).
#[derive(Args, Clone, Debug)]
#[command(next_help_heading = "Output and logging")]
pub struct LogArgs {
    /// Log level of `run` and `apply` [default: from kube-ovn's -v N if given (0-2 info, 3-4
    /// debug, 5+ trace), else RUST_LOG, else info]. Libraries log at most at info unless
    /// RUST_LOG says more.
    #[arg(long, global = true, value_enum, value_name = "LEVEL")]
    pub log_level: Option<LogLevel>,
    /// Format of log lines.
    #[arg(
        long,
        global = true,
        value_enum,
        default_value = "text",
        value_name = "FORMAT"
    )]
    pub log_format: LogFormat,
    /// Quiet: nothing on stderr below an error (no info or warning diagnostics, no summary
    /// lines; log level error unless --log-level is given).
    #[arg(short = 'q', long, global = true)]
    pub quiet: bool,
}

/// The filter, from the first of: `--log-level`, `-q`, `-v N`, `RUST_LOG`, info.
pub fn filter(args: &LogArgs, verbosity: Option<&str>) -> Result<EnvFilter, String> {
    let level = args.log_level.or(args.quiet.then_some(LogLevel::Error));
    let level = match (level, verbosity) {
        (Some(level), _) => Some(level),
        (None, Some(v)) => {
            let v = bgpgen::goflags::parse_decimal_i32(v).map_err(|e| format!("-v: {e}"))?;
            Some(LogLevel::from_klog_verbosity(v))
        }
        (None, None) => None,
    };
    if let Some(level) = level {
        return Ok(EnvFilter::new(level.directives()));
    }
    match std::env::var("RUST_LOG") {
        Ok(directives) if !directives.trim().is_empty() => {
            EnvFilter::try_new(&directives).map_err(|e| {
                format!(
                    "RUST_LOG={:?}: {e}",
                    bgpgen::text::clip(&directives, bgpgen::text::QUOTE_CHARS)
                )
            })
        }
        _ => Ok(EnvFilter::new(LogLevel::Info.directives())),
    }
}

/// Installs the subscriber on stderr. Called once, by the commands that log.
pub fn init(args: &LogArgs, verbosity: Option<&str>) -> Result<(), String> {
    let filter = filter(args, verbosity)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    // A second subscriber (a test calling twice) is not an error worth failing for.
    let _ = match args.log_format {
        LogFormat::Text => builder
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .fmt_fields(Logfmt)
            .try_init(),
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
    Ok(())
}

/// Fields as logfmt: `key=value`, quoted when the value needs it; the message first, unquoted
/// but escaped.
pub struct Logfmt;

impl<'writer> FormatFields<'writer> for Logfmt {
    fn format_fields<R: RecordFields>(&self, writer: Writer<'writer>, fields: R) -> fmt::Result {
        let mut visitor = LogfmtVisitor {
            writer,
            result: Ok(()),
            first: true,
        };
        fields.record(&mut visitor);
        visitor.result
    }
}

struct LogfmtVisitor<'writer> {
    writer: Writer<'writer>,
    result: fmt::Result,
    first: bool,
}

impl LogfmtVisitor<'_> {
    fn write(&mut self, field: &Field, value: &str) {
        if self.result.is_err() {
            return;
        }
        let separator = if self.first { "" } else { " " };
        self.first = false;
        self.result = if field.name() == "message" {
            write!(self.writer, "{separator}{}", bgpgen::text::escape(value))
        } else {
            // `r#type` and the like: the raw-identifier prefix is not part of the key.
            let name = field.name().trim_start_matches("r#");
            write!(self.writer, "{separator}{name}={}", quote(value))
        };
    }
}

impl Visit for LogfmtVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.write(field, value);
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.write(field, &value.to_string());
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.write(field, &format!("{value:?}"));
    }
}

/// A logfmt value: as it is when it is a plain word, else in double quotes with `\` and `"`
/// escaped and every control or invisible character written as an escape (`\n`, `\u{202e}`).
pub fn quote(value: &str) -> String {
    let plain = !value.is_empty()
        && !value
            .chars()
            .any(|c| c == ' ' || c == '=' || c == '"' || c == '\\' || bgpgen::text::is_unsafe(c));
    if plain {
        return value.to_string();
    }
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c => out.push_str(&bgpgen::text::escape(c.encode_utf8(&mut [0; 4]))),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logfmt_quotes_what_would_split_a_value() {
        assert_eq!(quote("birdc"), "birdc");
        assert_eq!(quote("birdc configure"), "\"birdc configure\"");
        assert_eq!(quote(""), "\"\"");
        assert_eq!(quote("a=b"), "\"a=b\"");
        assert_eq!(quote("say \"hi\"\nbye"), "\"say \\\"hi\\\"\\nbye\"");
        assert_eq!(quote("C:\\x"), "\"C:\\\\x\"");
        assert_eq!(quote("evil\u{202e}"), "\"evil\\u{202e}\"");
    }

    #[test]
    fn klog_verbosity_maps_to_levels() {
        assert_eq!(LogLevel::from_klog_verbosity(-1), LogLevel::Info);
        assert_eq!(LogLevel::from_klog_verbosity(0), LogLevel::Info);
        assert_eq!(LogLevel::from_klog_verbosity(2), LogLevel::Info);
        assert_eq!(LogLevel::from_klog_verbosity(3), LogLevel::Debug);
        assert_eq!(LogLevel::from_klog_verbosity(4), LogLevel::Debug);
        assert_eq!(LogLevel::from_klog_verbosity(5), LogLevel::Trace);
        assert_eq!(LogLevel::Debug.directives(), "info,bgpgen=debug");
        assert_eq!(LogLevel::Warn.directives(), "warn");
    }
}
