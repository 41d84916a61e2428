//! eks-upgrade's command line: parsing arguments, the faces a run reports through (a terminal
//! with progress bars and prompts, or log lines), and exit codes. Everything a run does lives in
//! `eks-upgrade-core`; the emulated world behind `demo`, `sandbox` and `run --sandbox` lives in
//! `eks-upgrade-sandbox`. See `docs/architecture.md` for the map.

pub mod cli;
pub mod ui;
