//! The workflow loader under a long mutation run: the shipped workflows, damaged as the bounded
//! test in `crates/core/src/workflow/mod.rs` damages them but for as many mutants as asked,
//! each loaded in-process, and a sample through the real binary (`eks-upgrade validate`).
//!
//! ```text
//! cargo bench --bench fuzz_workflows -- [--mutants 200000] [--seed 0x5eed1234abcdef01] [--binary-every 1000]
//! ```
//!
//! Stops at the first mutant that panics, is refused without problems, or is shown without its
//! file name (or line, where it has one), or that the binary does not answer with exit 2, and
//! leaves that mutant in a file for the bug report. Prints counts and the slowest times.

use std::io::Write;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use eks_upgrade_core::workflow::mutants::{self, SEED, SHIPPED, Verdict, XorShift};

const BIN: &str = env!("CARGO_BIN_EXE_eks-upgrade");

fn arg<T: std::str::FromStr>(name: &str, parse: impl Fn(&str) -> Option<T>, default: T) -> T {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .and_then(|v| parse(v))
        .unwrap_or(default)
}

fn seed(text: &str) -> Option<u64> {
    match text.strip_prefix("0x") {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    }
}

/// Leaves a failing mutant where a person can load it again, and stops.
fn fail(name: &str, round: usize, seed: u64, bytes: &[u8], why: &str) -> ! {
    let path = std::env::temp_dir().join(format!("fuzz-workflows-{seed:x}-{round}-{name}"));
    let _ = std::fs::write(&path, bytes);
    eprintln!(
        "mutant {round} of `{name}` (seed {seed:#x}): {why}\nsaved as {}",
        path.display()
    );
    std::process::exit(1);
}

fn main() {
    let total = arg("--mutants", |v| v.parse().ok(), 200_000usize);
    let seed = arg("--seed", seed, SEED);
    let every = arg("--binary-every", |v| v.parse().ok(), 1000usize).max(1);
    let dir = tempfile::tempdir().expect("scratch directory");
    let mut rng = XorShift::new(seed);
    let (mut valid, mut refused, mut not_text, mut through_binary) = (0usize, 0usize, 0usize, 0);
    let mut slowest_load = Duration::ZERO;
    let mut slowest_binary = Duration::ZERO;
    let started = Instant::now();
    for round in 0..total {
        let (name, original) = SHIPPED[round % SHIPPED.len()];
        let bytes = mutants::mutate(original.as_bytes(), &mut rng);
        let at = Instant::now();
        let verdict = std::panic::catch_unwind(|| mutants::check(name, bytes.clone()));
        slowest_load = slowest_load.max(at.elapsed());
        match verdict {
            Err(_) => fail(name, round, seed, &bytes, "the loader panicked"),
            Ok(Err(why)) => fail(name, round, seed, &bytes, &why),
            Ok(Ok(Verdict::Valid)) => valid += 1,
            Ok(Ok(Verdict::NotText)) => not_text += 1,
            Ok(Ok(Verdict::Refused { .. })) => {
                refused += 1;
                if refused % every == 0 {
                    let path = dir.path().join(name);
                    std::fs::write(&path, &bytes).expect("write mutant");
                    let at = Instant::now();
                    let out = Command::new(BIN)
                        .args(["validate"])
                        .arg(&path)
                        .env("NO_COLOR", "1")
                        .stdout(Stdio::null())
                        .stderr(Stdio::piped())
                        .output()
                        .expect("run eks-upgrade");
                    slowest_binary = slowest_binary.max(at.elapsed());
                    through_binary += 1;
                    let stderr = String::from_utf8_lossy(&out.stderr);
                    if out.status.code() != Some(2) || !stderr.contains(name) {
                        fail(
                            name,
                            round,
                            seed,
                            &bytes,
                            &format!(
                                "`eks-upgrade validate` exited {:?}:\n{stderr}",
                                out.status.code()
                            ),
                        );
                    }
                }
            }
        }
        if round > 0 && round % 20_000 == 0 {
            eprint!(".");
            let _ = std::io::stderr().flush();
        }
    }
    println!(
        "{total} mutants (seed {seed:#x}) in {:.1}s: {refused} refused, {valid} still valid, {not_text} not UTF-8",
        started.elapsed().as_secs_f64()
    );
    println!(
        "slowest load in-process: {:.1} ms; {through_binary} through `eks-upgrade validate`, slowest {:.0} ms, each exit 2",
        slowest_load.as_secs_f64() * 1000.0,
        slowest_binary.as_secs_f64() * 1000.0
    );
}
