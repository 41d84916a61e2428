//! eks-upgrade-core: everything a run does, from loading a workflow to the report, with no
//! terminal and no emulator in it. The binary (`eks-upgrade`) draws the terminal and parses the
//! command line; `eks-upgrade-sandbox` is the emulated world the tests and the demo run against.
//!
//! Modules, from the bottom up (a module uses only those listed before it):
//! `types` → `workflow` (the format machinery) → `journal` → `events` → `state`, `exit` →
//! `cloud` → `velero` → `checks` → `steps` → `engine`.

pub mod checks;
pub mod cloud;
pub mod engine;
pub mod events;
pub mod exit;
pub mod journal;
pub mod state;
pub mod steps;
pub mod types;
pub mod velero;
pub mod workflow;
