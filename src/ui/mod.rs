//! How the tool talks to people: colour, terminal detection and message style.
//!
//! Data goes to stdout, messages to stderr. Colour follows `--color`, then `NO_COLOR`, then
//! whether stderr is a terminal. With `--log-format json` (`run`, `resume`) every message is a
//! JSON line instead, as the run's own log lines are, so a collector can parse all of stderr.

pub mod redact;
pub mod reporter;

use std::io::IsTerminal;

use eks_upgrade_core::workflow::Style;

/// The `--color` choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum ColorChoice {
    #[default]
    Auto,
    Always,
    Never,
}

#[derive(Debug, Clone, Copy)]
pub struct Ui {
    color: bool,
    stderr_terminal: bool,
    /// Messages as JSON lines (`--log-format json`).
    json: bool,
}

impl Ui {
    pub fn new(choice: ColorChoice) -> Self {
        let stderr_terminal = std::io::stderr().is_terminal();
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let color = match choice {
            ColorChoice::Always => true,
            ColorChoice::Never => false,
            ColorChoice::Auto => stderr_terminal && !no_color,
        };
        Ui {
            color,
            stderr_terminal,
            json: false,
        }
    }

    /// The same face writing every message as one JSON line: `ts`, `level`, `event` and
    /// `message`, the shape of the run's log lines.
    pub fn json_lines(self) -> Self {
        Ui {
            color: false,
            json: true,
            ..self
        }
    }

    /// Whether messages are JSON lines.
    pub fn is_json(&self) -> bool {
        self.json
    }

    fn json_line(&self, level: &str, event: &str, message: &str) {
        use std::io::Write;
        let line = serde_json::json!({
            "ts": reporter::timestamp(),
            "level": level,
            "event": event,
            "message": message,
        });
        // A closed stderr must not turn a message into a panic.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    /// How diagnostics are drawn: box drawing and colour only for a person at a terminal.
    pub fn diagnostic_style(&self) -> Style {
        if self.color && self.stderr_terminal && !self.json {
            Style::Fancy
        } else {
            Style::Plain
        }
    }

    fn paint(&self, code: &str, text: &str) -> String {
        if self.color {
            format!("\x1b[{code}m{text}\x1b[0m")
        } else {
            text.to_string()
        }
    }

    /// `error: …` on stderr.
    pub fn error(&self, message: impl std::fmt::Display) {
        if self.json {
            return self.json_line("error", "message", &message.to_string());
        }
        eprintln!("{}: {message}", self.paint("1;31", "error"));
    }

    /// `warning: …` on stderr.
    pub fn warn(&self, message: impl std::fmt::Display) {
        if self.json {
            return self.json_line("warning", "message", &message.to_string());
        }
        eprintln!("{}: {message}", self.paint("1;33", "warning"));
    }

    /// `hint: …` on stderr; a JSON line with `event: hint` in JSON mode.
    pub fn hint(&self, message: impl std::fmt::Display) {
        if self.json {
            return self.json_line("info", "hint", &message.to_string());
        }
        eprintln!("{}: {message}", self.paint("1;36", "hint"));
    }

    /// A plain progress or result line on stderr.
    pub fn info(&self, message: impl std::fmt::Display) {
        if self.json {
            return self.json_line("info", "message", &message.to_string());
        }
        eprintln!("{message}");
    }

    /// Text emphasised as a success (green when coloured).
    pub fn good(&self, text: &str) -> String {
        self.paint("32", text)
    }

    /// Text emphasised as a failure (red when coloured).
    pub fn bad(&self, text: &str) -> String {
        self.paint("31", text)
    }

    pub fn error_word(&self) -> String {
        self.paint("1;31", "error")
    }

    pub fn warn_word(&self) -> String {
        self.paint("1;33", "warning")
    }

    /// Raw diagnostic text on stderr, as rendered.
    pub fn diagnostic(&self, rendered: &str) {
        if self.json {
            return self.json_line("error", "message", rendered.trim_end());
        }
        eprint!("{rendered}");
    }
}
