//! The sections of a workflow, which decide when a step runs.

use serde::{Deserialize, Serialize};

/// The section a step belongs to; decides when it runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Phase {
    Prepare,
    Upgrade,
    OnFailure,
    Finish,
}

impl Phase {
    /// The key of the section in the file.
    pub fn key(self) -> &'static str {
        match self {
            Phase::Prepare => "prepare",
            Phase::Upgrade => "upgrade",
            Phase::OnFailure => "onFailure",
            Phase::Finish => "finish",
        }
    }
}

impl Phase {
    /// Every section, in the order a run reaches them.
    pub const ALL: [Phase; 4] = [
        Phase::Prepare,
        Phase::Upgrade,
        Phase::OnFailure,
        Phase::Finish,
    ];
}
