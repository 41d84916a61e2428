//! The per-backup and per-restore log Velero uploads (`NAME-logs.gz`), and the results file
//! built from its warnings and errors (`NAME-results.gz`).

use std::collections::BTreeMap;

use serde::Serialize;

use super::layout;

/// `results.Result`: messages for Velero itself, for cluster-scoped items, and per namespace.
/// Empty parts are left out, as Go's `omitempty` does.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Messages {
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub velero: Vec<String>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cluster: Vec<String>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub namespaces: BTreeMap<String, Vec<String>>,
}

impl Messages {
    /// `Result.Add`: a namespace's message, or a cluster one for cluster-scoped items.
    pub fn add(&mut self, namespace: &str, message: String) {
        if namespace.is_empty() {
            self.cluster.push(message);
        } else {
            self.namespaces
                .entry(namespace.to_string())
                .or_default()
                .push(message);
        }
    }

    pub fn count(&self) -> usize {
        self.velero.len()
            + self.cluster.len()
            + self.namespaces.values().map(Vec::len).sum::<usize>()
    }
}

/// The results file: `{"errors":{...},"warnings":{...}}`.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Results {
    pub errors: Messages,
    pub warnings: Messages,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
}

impl Level {
    fn as_str(self) -> &'static str {
        match self {
            Level::Info => "info",
            Level::Warning => "warning",
            Level::Error => "error",
        }
    }
}

/// A run's log in logrus' text format, with the warning and error counts Velero's log hook
/// keeps (they become `status.warnings` / `status.errors` of a backup).
pub struct RunLog {
    /// `backup=velero/NAME` or `restore=velero/NAME`.
    subject: (&'static str, String),
    lines: Vec<String>,
    pub results: Results,
}

impl RunLog {
    pub fn new(kind: &'static str, namespace: &str, name: &str) -> RunLog {
        RunLog {
            subject: (kind, format!("{namespace}/{name}")),
            lines: Vec::new(),
            results: Results::default(),
        }
    }

    /// One line; `source` is the Go file and line Velero logs from, for realism.
    pub fn line(&mut self, level: Level, source: &str, msg: &str, fields: &[(&str, &str)]) {
        let mut line = format!(
            "time={} level={} msg={}",
            quote(&layout::now()),
            level.as_str(),
            quote(msg)
        );
        let mut all: Vec<(&str, &str)> = fields.to_vec();
        all.push((self.subject.0, &self.subject.1));
        all.push(("logSource", source));
        // logrus sorts fields by key.
        all.sort_by(|a, b| a.0.cmp(b.0));
        for (k, v) in all {
            line.push(' ');
            line.push_str(k);
            line.push('=');
            line.push_str(&quote(v));
        }
        self.lines.push(line);
    }

    pub fn info(&mut self, source: &str, msg: &str) {
        self.line(Level::Info, source, msg, &[]);
    }

    /// A backup item error, recorded as Velero's log hook records it in the results: by
    /// namespace, as ` resource: /R name: /N message: /M error: /E`.
    pub fn item_error(
        &mut self,
        source: &str,
        resource: &str,
        namespace: &str,
        name: &str,
        msg: &str,
        error: &str,
    ) {
        let mut fields = vec![("resource", resource), ("name", name), ("error", error)];
        if !namespace.is_empty() {
            fields.push(("namespace", namespace));
        }
        self.line(Level::Error, source, msg, &fields);
        let entry = format!(" resource: /{resource} name: /{name} message: /{msg} error: /{error}");
        if namespace.is_empty() {
            self.results.errors.velero.push(entry);
        } else {
            self.results.errors.add(namespace, entry);
        }
    }

    /// An error with no item, which the log hook files under `velero`.
    pub fn velero_error(&mut self, source: &str, msg: &str) {
        self.line(Level::Error, source, msg, &[]);
        self.results.errors.velero.push(format!(" message: /{msg}"));
    }

    pub fn text(&self) -> Vec<u8> {
        let mut out = self.lines.join("\n").into_bytes();
        out.push(b'\n');
        out
    }
}

/// logrus' text formatter quotes a value unless it is made only of "safe" characters.
fn quote(value: &str) -> String {
    let safe = !value.is_empty()
        && value.chars().all(|c| {
            c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '/' | '@' | '^' | '+')
        });
    if safe {
        value.to_string()
    } else {
        serde_json::to_string(value).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_look_like_logrus_and_errors_land_in_results() {
        let mut log = RunLog::new("backup", "velero", "b1");
        log.info("pkg/backup/backup.go:1", "Writing backup version file");
        log.item_error(
            "pkg/backup/item_backupper.go:2",
            "pods",
            "shop",
            "web-1",
            "Error backing up item",
            "boom",
        );
        let text = String::from_utf8(log.text()).unwrap_or_default();
        assert!(text.contains("level=info msg=\"Writing backup version file\" backup=velero/b1 logSource=\"pkg/backup/backup.go:1\""));
        assert_eq!(log.results.errors.count(), 1);
        let json = String::from_utf8(layout::go_json(&log.results)).unwrap_or_default();
        assert!(
            json.starts_with(r#"{"errors":{"namespaces":{"shop":[" resource: /pods name: /web-1"#),
            "{json}"
        );
        assert!(json.ends_with(r#""warnings":{}}"#), "{json}");
    }
}
