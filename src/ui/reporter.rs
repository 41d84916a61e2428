//! The two faces of a run behind the library's `Reporter` interface: a terminal with progress bars and prompts, or
//! log lines (text or JSON) for schedulers and CI, which never prompt.

use std::collections::HashMap;
use std::io::Write;
use std::sync::Mutex;
use std::time::Duration;

use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use eks_upgrade_core::events::{Event, Level};
pub use eks_upgrade_core::events::{PromptError, Reporter};
use eks_upgrade_core::journal::{StepKey, StepStatus};

/// `--log-format`
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

/// Log lines on stderr: a timestamp, a level, the message. For cron mail and CI logs.
pub struct LogReporter {
    pub format: LogFormat,
}

pub(crate) fn timestamp() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn describe(event: &Event<'_>) -> (Level, String) {
    match event {
        Event::RunStarted {
            run_id,
            workflow,
            cluster,
            region,
            from,
            hops,
            resumed,
        } => {
            let path: Vec<String> = from
                .iter()
                .chain(hops.iter())
                .map(|v| v.to_string())
                .collect();
            let verb = if *resumed { "resuming" } else { "starting" };
            (
                Level::Info,
                format!(
                    "{verb} run {run_id}: workflow `{workflow}` on cluster `{cluster}` ({region}), {}",
                    if path.len() > 1 {
                        path.join(" -> ")
                    } else {
                        "no version change".into()
                    }
                ),
            )
        }
        Event::PhaseStarted { phase, hop } => (
            Level::Info,
            match hop {
                Some(h) => format!("{phase}: hop to {h}"),
                None => phase.to_string(),
            },
        ),
        Event::StepStarted { step, title, .. } => (Level::Info, format!("{step}: {title}")),
        Event::StepProgress {
            step,
            message,
            done,
            total,
        } => (
            Level::Info,
            match (done, total) {
                (Some(d), Some(t)) => format!("{step}: {message} ({d}/{t})"),
                _ => format!("{step}: {message}"),
            },
        ),
        Event::StepFinished {
            step,
            status,
            summary,
            duration_ms,
            ..
        } => {
            let level = if *status == StepStatus::Failed {
                Level::Error
            } else {
                Level::Info
            };
            (
                level,
                format!(
                    "{step}: {} in {:.1}s: {summary}",
                    status_word(*status),
                    *duration_ms as f64 / 1000.0
                ),
            )
        }
        Event::Message { level, message } => (*level, message.to_string()),
        Event::RunFinished {
            run_id,
            result,
            exit_code,
            message,
            ..
        } => {
            let level = if *exit_code == 0 {
                Level::Info
            } else {
                Level::Error
            };
            (
                level,
                format!("run {run_id} {result} (exit {exit_code}): {message}"),
            )
        }
    }
}

fn status_word(status: StepStatus) -> &'static str {
    match status {
        StepStatus::Running => "running",
        StepStatus::Succeeded => "done",
        StepStatus::Failed => "failed",
        StepStatus::Skipped => "skipped",
    }
}

impl Reporter for LogReporter {
    fn emit(&self, event: &Event<'_>) {
        let line = match self.format {
            LogFormat::Json => {
                let mut value = serde_json::to_value(event).unwrap_or(serde_json::Value::Null);
                let (level, message) = describe(event);
                if let Some(o) = value.as_object_mut() {
                    o.insert("ts".into(), timestamp().into());
                    o.entry("level")
                        .or_insert_with(|| serde_json::to_value(level).unwrap_or_default());
                    o.entry("message").or_insert(message.into());
                }
                value.to_string()
            }
            LogFormat::Text => {
                let (level, message) = describe(event);
                let level = match level {
                    Level::Info => "INFO ",
                    Level::Warning => "WARN ",
                    Level::Error => "ERROR",
                };
                format!("{} {level} {message}", timestamp())
            }
        };
        // A closed stderr must not stop an upgrade halfway.
        let _ = writeln!(std::io::stderr().lock(), "{line}");
    }

    fn confirm(&self, _: &str) -> Result<bool, PromptError> {
        Err(PromptError::NoTerminal)
    }

    fn select(&self, _: &str, _: &[String], _: usize) -> Result<usize, PromptError> {
        Err(PromptError::NoTerminal)
    }

    fn interactive(&self) -> bool {
        false
    }
}

/// A person at a terminal: a progress line per step with its live phase, prompts, colour.
pub struct TerminalReporter {
    multi: MultiProgress,
    bars: Mutex<HashMap<StepKey, ProgressBar>>,
    ui: super::Ui,
}

impl TerminalReporter {
    pub fn new(ui: super::Ui) -> Self {
        TerminalReporter {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stderr()),
            bars: Mutex::new(HashMap::new()),
            ui,
        }
    }

    fn bar(&self, step: &StepKey) -> Option<ProgressBar> {
        self.bars.lock().ok()?.get(step).cloned()
    }

    fn println(&self, line: &str) {
        if self.multi.println(line).is_err() {
            eprintln!("{line}");
        }
    }
}

impl Reporter for TerminalReporter {
    fn emit(&self, event: &Event<'_>) {
        match event {
            Event::StepStarted { step, title, .. } => {
                let bar = self.multi.add(ProgressBar::new_spinner());
                bar.set_style(
                    ProgressStyle::with_template(
                        "{spinner:.cyan} {prefix:.bold} {wide_msg} {elapsed:>4}",
                    )
                    .unwrap_or_else(|_| ProgressStyle::default_spinner()),
                );
                bar.set_prefix(title.to_string());
                bar.enable_steady_tick(Duration::from_millis(120));
                if let Ok(mut bars) = self.bars.lock() {
                    bars.insert((*step).clone(), bar);
                }
            }
            Event::StepProgress {
                step,
                message,
                done,
                total,
            } => {
                if let Some(bar) = self.bar(step) {
                    match (done, total) {
                        (Some(d), Some(t)) if *t > 0 => {
                            bar.set_message(format!("{message} [{d}/{t}]"))
                        }
                        _ => bar.set_message(message.to_string()),
                    }
                }
            }
            Event::StepFinished {
                step,
                title,
                status,
                summary,
                duration_ms,
            } => {
                let mark = match status {
                    StepStatus::Succeeded => self.ui.good("✓"),
                    StepStatus::Failed => self.ui.bad("✗"),
                    _ => "-".to_string(),
                };
                let line = format!(
                    "{mark} {title}: {summary} ({:.1}s)",
                    *duration_ms as f64 / 1000.0
                );
                match self.bars.lock().ok().and_then(|mut b| b.remove(*step)) {
                    Some(bar) => {
                        bar.finish_and_clear();
                        self.multi.remove(&bar);
                        self.println(&line);
                    }
                    None => self.println(&line),
                }
            }
            other => {
                let (level, message) = describe(other);
                let line = match level {
                    Level::Info => message,
                    Level::Warning => format!("{}: {message}", self.ui.warn_word()),
                    Level::Error => format!("{}: {message}", self.ui.error_word()),
                };
                self.println(&line);
            }
        }
    }

    fn confirm(&self, question: &str) -> Result<bool, PromptError> {
        self.multi.suspend(|| {
            dialoguer::Confirm::new()
                .with_prompt(question)
                .default(false)
                .interact_opt()
                .map(|a| a.unwrap_or(false))
                .map_err(|e| PromptError::Failed(e.to_string()))
        })
    }

    fn select(&self, prompt: &str, items: &[String], default: usize) -> Result<usize, PromptError> {
        self.multi.suspend(|| {
            dialoguer::Select::new()
                .with_prompt(prompt)
                .items(items)
                .default(default)
                .interact()
                .map_err(|e| PromptError::Failed(e.to_string()))
        })
    }

    fn interactive(&self) -> bool {
        true
    }
}
