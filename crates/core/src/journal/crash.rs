//! Test only (cargo feature `crash-points`, which release builds never enable): abort the
//! process right after its N-th journal write, N from `EKS_UPGRADE_CRASH_AFTER_WRITE`, so that a
//! test can crash a run at every write it makes and prove that `resume` always ends where an
//! uninterrupted run ends.

use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};

/// The variable naming the write to abort after (1 = the first).
pub const VARIABLE: &str = "EKS_UPGRADE_CRASH_AFTER_WRITE";

static WRITES: AtomicU64 = AtomicU64::new(0);

fn target() -> Option<u64> {
    static TARGET: OnceLock<Option<u64>> = OnceLock::new();
    *TARGET.get_or_init(|| std::env::var(VARIABLE).ok()?.trim().parse().ok())
}

/// Called after every journal write that reached the store.
pub fn after_write() {
    let n = WRITES.fetch_add(1, Ordering::SeqCst) + 1;
    if target() == Some(n) {
        eprintln!("crash point: aborting after journal write {n}");
        // Like a kill: no destructor, no lock release, no further journal write.
        std::process::abort();
    }
}
