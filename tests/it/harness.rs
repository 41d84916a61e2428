//! The harness itself (`common`): a child past its deadline is killed, with its process group,
//! and reported with its command, the timeout and its output so far; a poll that never holds
//! fails with what it waited for. Every other test relies on this to fail instead of hanging.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::Command;
use std::time::Duration;

use crate::common::{POLL_TIMEOUT, Running, Test, Timed, poll};

/// Whether a process is gone: no longer in the process table, or dead and waiting for a
/// parent to collect it (a zombie holds nothing and runs nothing).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        // The state follows the command name, which is in parentheses.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// The first line of a child's stdout as a pid, once it is printed.
fn printed_pid(child: &Running) -> u32 {
    poll("the child to print a pid", POLL_TIMEOUT, || {
        let out = child.stdout_so_far();
        out.lines()
            .next()
            .and_then(|l| l.trim().parse::<u32>().ok())
    })
}

/// The text of a panic caught by `catch_unwind`.
fn panic_text(payload: Box<dyn std::any::Any + Send>) -> String {
    payload
        .downcast_ref::<String>()
        .cloned()
        .or_else(|| payload.downcast_ref::<&str>().map(|s| s.to_string()))
        .unwrap_or_default()
}

#[test]
fn a_child_that_finishes_in_time_gives_its_code_and_output() {
    let out = Command::new("sh")
        .args(["-c", "echo out; echo err >&2; exit 3"])
        .output_timed()
        .expect("sh");
    assert_eq!(out.code, Some(3));
    assert_eq!(out.stdout, "out\n");
    assert_eq!(out.stderr, "err\n");
}

#[test]
fn a_child_past_its_timeout_is_killed_with_its_group_and_reported() {
    let child = Command::new("sh")
        .args(["-c", "sleep 600 & echo $!; echo waiting >&2; wait"])
        .spawn_timed_in_group()
        .expect("sh")
        .within(Duration::from_millis(500));
    let shell = child.id();
    let sleeper = printed_pid(&child);
    poll("the child to write to stderr", POLL_TIMEOUT, || {
        child.stderr_so_far() == "waiting\n"
    });

    let timed_out = child
        .wait_or_timeout()
        .expect_err("`sleep 600` cannot finish within 500 ms");
    assert_eq!(timed_out.exited, None, "it was killed, it did not exit");
    assert_eq!(timed_out.stdout, format!("{sleeper}\n"));
    assert_eq!(timed_out.stderr, "waiting\n");
    let message = timed_out.to_string();
    assert!(
        message.starts_with(
            "`sh -c 'sleep 600 & echo $!; echo waiting >&2; wait'` did not finish within 500ms; killed it and its process group\n"
        ),
        "{message}"
    );
    assert!(
        message.ends_with(&format!(
            "\n--- stdout so far\n{sleeper}\n\n--- stderr so far\nwaiting\n"
        )),
        "{message}"
    );
    // The shell and the sleep it started in the background are both gone.
    for pid in [shell, sleeper] {
        poll(&format!("process {pid} to be gone"), POLL_TIMEOUT, || {
            gone(pid)
        });
    }
}

#[test]
fn a_child_that_exits_but_leaves_its_output_open_is_reported_and_its_group_killed() {
    // The shell exits at once; the sleep it started keeps the shell's stdout open.
    let child = Command::new("sh")
        .args(["-c", "sleep 600 & echo $!"])
        .spawn_timed_in_group()
        .expect("sh")
        .within(Duration::from_millis(500));
    let sleeper = printed_pid(&child);
    let timed_out = child
        .wait_or_timeout()
        .expect_err("the sleep holds the output open");
    assert!(timed_out.exited.is_some_and(|s| s.success()), "{timed_out}");
    assert!(
        timed_out
            .to_string()
            .contains("but its output stayed open for 500ms"),
        "{timed_out}"
    );
    poll("the background sleep to be gone", POLL_TIMEOUT, || {
        gone(sleeper)
    });
}

#[test]
fn waiting_past_the_timeout_fails_the_test_with_the_command_and_the_timeout() {
    let child = Command::new("sleep")
        .arg("600")
        .spawn_timed()
        .expect("sleep")
        .within(Duration::from_millis(200));
    let pid = child.id();
    let panicked = catch_unwind(AssertUnwindSafe(|| child.wait()))
        .expect_err("`wait` fails the test on a timeout");
    assert_eq!(
        panic_text(panicked),
        "`sleep 600` did not finish within 200ms; killed it\n--- stdout so far\n\n--- stderr so far\n"
    );
    assert!(gone(pid), "the sleep was killed and reaped");
}

#[test]
fn a_run_of_the_binary_past_its_timeout_is_killed_and_reported() {
    // The sandbox serves until it is interrupted.
    let run = Test::new()
        .arg("sandbox")
        .timeout(Duration::from_secs(1))
        .spawn();
    let pid = run.id();
    let timed_out = run
        .wait_or_timeout()
        .expect_err("the sandbox never ends by itself");
    assert_eq!(timed_out.exited, None);
    assert!(
        timed_out.to_string().starts_with(&format!(
            "`{} sandbox` did not finish within 1s; killed it\n--- stdout so far\n",
            env!("CARGO_BIN_EXE_eks-upgrade")
        )),
        "{timed_out}"
    );
    assert!(gone(pid), "the sandbox was killed and reaped");
}

#[test]
fn a_poll_on_a_child_that_ended_fails_without_waiting_for_its_timeout() {
    let mut child = Command::new("sh")
        .args(["-c", "echo gave up >&2; exit 3"])
        .spawn_timed()
        .expect("sh");
    let panicked = catch_unwind(AssertUnwindSafe(|| {
        poll("something the child never does", POLL_TIMEOUT, || {
            child.check(false)
        })
    }))
    .expect_err("the child ended, so the condition cannot come to hold");
    let text = panic_text(panicked);
    assert!(
        text.starts_with("the child ended (exit status: 3) before what the test waited for: `sh -c 'echo gave up >&2; exit 3'`"),
        "{text}"
    );
    assert!(text.ends_with("--- stderr so far\ngave up\n"), "{text}");
}

#[test]
fn a_poll_that_never_holds_fails_with_what_it_waited_for() {
    let panicked = catch_unwind(|| {
        poll(
            "a condition that never holds",
            Duration::from_millis(50),
            || Err::<(), _>("still false"),
        )
    })
    .expect_err("the poll times out");
    assert_eq!(
        panic_text(panicked),
        "timed out after 50ms waiting for a condition that never holds; last seen:\nstill false"
    );
    // A value is returned as soon as the condition holds.
    let mut looks = 0;
    let value = poll("the third look", POLL_TIMEOUT, || {
        looks += 1;
        (looks == 3).then_some(looks)
    });
    assert_eq!(value, 3);
}
