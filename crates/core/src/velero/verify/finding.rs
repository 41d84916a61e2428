//! What verification found wrong with a backup.

use serde::Serialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; the backup is still restorable.
    Warning,
    /// The backup cannot be trusted for a restore.
    Error,
}

/// One problem, tied to the object in the bucket it was found in.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    pub severity: Severity,
    /// The object key (`backups/NAME/NAME.tar.gz`), or for an item inside the tarball the key
    /// followed by `:` and the entry path.
    pub key: String,
    pub message: String,
}

impl Finding {
    pub fn error(key: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Error,
            key: key.into(),
            message: message.into(),
        }
    }

    pub fn warning(key: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            severity: Severity::Warning,
            key: key.into(),
            message: message.into(),
        }
    }
}

/// Findings gathered while streaming, capped so that a badly broken tarball of 50,000 items
/// does not produce 50,000 lines; the count of what was left out is kept.
#[derive(Debug, Default)]
pub struct Findings {
    pub items: Vec<Finding>,
    pub suppressed: usize,
}

/// More than this many findings from one object are summarised.
const MAX_PER_KEY: usize = 50;

impl Findings {
    pub fn push(&mut self, finding: Finding) {
        let base = finding.key.split(':').next().unwrap_or("");
        let same = self
            .items
            .iter()
            .filter(|f| f.key.split(':').next() == Some(base))
            .count();
        if same >= MAX_PER_KEY {
            self.suppressed += 1;
        } else {
            self.items.push(finding);
        }
    }

    pub fn has_errors(&self) -> bool {
        self.items.iter().any(|f| f.severity == Severity::Error) || self.suppressed > 0
    }
}
