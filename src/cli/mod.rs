//! The command implementations that have grown past a few lines, and what every command shares
//! (output formats, `-q`, logging). `main.rs` holds the clap definitions and the dispatch.

pub mod completion;
pub mod diff_cmd;
pub mod explain_cmd;
pub mod logging;
pub mod output;
