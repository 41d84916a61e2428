//! Child processes of tests: every one is started with its output collected as it comes and a
//! deadline, and every wait on one ([`Running::wait`]) ends by that deadline, killing the child
//! (and its process group, if it has one) and failing the test with the command, the timeout
//! and what the child printed so far.

use std::fmt;
use std::io::Read;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

use super::{Output, POLL_INTERVAL, RUN_TIMEOUT};

/// Starting any command as a [`Running`] child: stdin empty, stdout and stderr collected as
/// they come (so a chatty child never blocks on a full pipe, and a failure can show what it
/// printed), and a deadline ([`RUN_TIMEOUT`] unless [`Running::within`] changes it).
pub trait Timed {
    fn spawn_timed(&mut self) -> std::io::Result<Running>;
    /// [`Timed::spawn_timed`] in a process group of its own, so that killing it kills whatever
    /// it started too.
    fn spawn_timed_in_group(&mut self) -> std::io::Result<Running>;
    /// Runs the command to its end, like [`Command::output`] with a deadline.
    fn output_timed(&mut self) -> std::io::Result<Output> {
        Ok(self.spawn_timed()?.wait())
    }
}

impl Timed for Command {
    fn spawn_timed(&mut self) -> std::io::Result<Running> {
        Running::launch(self, false)
    }

    fn spawn_timed_in_group(&mut self) -> std::io::Result<Running> {
        std::os::unix::process::CommandExt::process_group(self, 0);
        Running::launch(self, true)
    }
}

/// A child process of a test. Waiting on it ([`Running::wait`]) is bounded by its deadline;
/// dropping it kills it (a test that panics leaves nothing running).
pub struct Running {
    child: Child,
    /// The command line, for messages.
    command: String,
    group: bool,
    started: Instant,
    timeout: Duration,
    stdout: Pipe,
    stderr: Pipe,
    reaped: bool,
    /// When [`Running::check`] first saw the child ended.
    ended: Option<Instant>,
    /// A [`super::Test`]'s scratch directory, kept while its child runs.
    scratch: Option<tempfile::TempDir>,
}

/// One output stream of a child, read on a thread into a buffer the test can look at.
struct Pipe {
    text: Arc<Mutex<Vec<u8>>>,
    reader: Option<JoinHandle<()>>,
}

impl Pipe {
    fn read(from: Option<impl Read + Send + 'static>) -> Pipe {
        let text = Arc::new(Mutex::new(Vec::new()));
        let reader = from.map(|mut from| {
            let text = text.clone();
            std::thread::spawn(move || {
                let mut chunk = [0u8; 8192];
                loop {
                    match from.read(&mut chunk) {
                        Ok(0) => break,
                        Ok(n) => text
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .extend_from_slice(&chunk[..n]),
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                        Err(_) => break,
                    }
                }
            })
        });
        Pipe { text, reader }
    }

    /// Whether the stream reached its end: every writer (the child and anything it started
    /// that inherited it) closed it.
    fn closed(&self) -> bool {
        self.reader.as_ref().is_none_or(|r| r.is_finished())
    }

    fn so_far(&self) -> String {
        String::from_utf8_lossy(&self.text.lock().unwrap_or_else(|e| e.into_inner())).into_owned()
    }
}

/// A child that outlived its deadline, killed; or one that exited while something it started
/// kept its output open past the deadline.
#[derive(Debug)]
pub struct TimedOut {
    pub command: String,
    pub timeout: Duration,
    /// How the child ended, when it ended by itself.
    pub exited: Option<ExitStatus>,
    pub group: bool,
    pub stdout: String,
    pub stderr: String,
}

impl fmt::Display for TimedOut {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.exited {
            None => write!(
                f,
                "`{}` did not finish within {:?}; killed it{}",
                self.command,
                self.timeout,
                if self.group {
                    " and its process group"
                } else {
                    ""
                }
            )?,
            Some(status) => write!(
                f,
                "`{}` exited ({status}) but its output stayed open for {:?}; a process it started still holds it",
                self.command, self.timeout
            )?,
        }
        write!(
            f,
            "\n--- stdout so far\n{}\n--- stderr so far\n{}",
            self.stdout, self.stderr
        )
    }
}

impl Running {
    fn launch(command: &mut Command, group: bool) -> std::io::Result<Running> {
        let line = std::iter::once(command.get_program())
            .chain(command.get_args())
            .map(|a| {
                let a = a.to_string_lossy();
                if a.is_empty() || a.contains(char::is_whitespace) {
                    format!("'{a}'")
                } else {
                    a.into_owned()
                }
            })
            .collect::<Vec<_>>()
            .join(" ");
        let mut child = command
            // No test may reach a real instance metadata service for credentials.
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Running {
            stdout: Pipe::read(child.stdout.take()),
            stderr: Pipe::read(child.stderr.take()),
            child,
            command: line,
            group,
            started: Instant::now(),
            timeout: RUN_TIMEOUT,
            reaped: false,
            ended: None,
            scratch: None,
        })
    }

    /// Keeps a directory (the child's working directory) until the child is gone.
    pub(super) fn keeping(mut self, dir: tempfile::TempDir) -> Self {
        self.scratch = Some(dir);
        self
    }

    /// Sets the deadline: `timeout` after the start.
    pub fn within(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    pub fn id(&self) -> u32 {
        self.child.id()
    }

    pub fn stdout_so_far(&self) -> String {
        self.stdout.so_far()
    }

    pub fn stderr_so_far(&self) -> String {
        self.stderr.so_far()
    }

    /// A poll condition about what this child does: `Ok` when `holds`, otherwise its output so
    /// far, which a timed-out poll then shows. Once the child has ended (and a moment has passed
    /// for its last effects to land, such as a request record written after the response), the
    /// condition can no longer come to hold, and the test fails at once instead of at the poll's
    /// timeout.
    pub fn check(&mut self, holds: bool) -> Result<(), String> {
        if holds {
            return Ok(());
        }
        let output = format!(
            "`{}`\n--- stdout so far\n{}\n--- stderr so far\n{}",
            self.command,
            self.stdout.so_far(),
            self.stderr.so_far()
        );
        if let Some(status) = self.exited() {
            let ended = *self.ended.get_or_insert_with(Instant::now);
            if ended.elapsed() >= Duration::from_secs(5) {
                panic!("the child ended ({status}) before what the test waited for: {output}");
            }
        }
        Err(output)
    }

    /// How the child ended, if it has.
    pub fn exited(&mut self) -> Option<ExitStatus> {
        let status = self.child.try_wait().ok().flatten();
        self.reaped |= status.is_some();
        status
    }

    /// Sends a signal (`TERM`, `INT`, …) to the child, or to its group if it has one.
    #[track_caller]
    pub fn signal(&self, name: &str) {
        assert!(
            self.send(name),
            "`kill -s {name}` failed for `{}`",
            self.command
        );
    }

    fn send(&self, name: &str) -> bool {
        let target = if self.group {
            format!("-{}", self.child.id())
        } else {
            self.child.id().to_string()
        };
        // `kill` returns at once; the bound only keeps a broken machine from hanging the test.
        let Ok(mut kill) = Command::new("kill")
            .args(["-s", name, "--", &target])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
        else {
            return false;
        };
        match kill.wait_timeout(Duration::from_secs(10)) {
            Ok(Some(status)) => status.success(),
            _ => {
                let _ = kill.kill();
                let _ = kill.wait();
                false
            }
        }
    }

    /// SIGKILL to the child and its group, then reaps it.
    fn kill_now(&mut self) {
        if self.group {
            self.send("KILL");
        }
        let _ = self.child.kill();
        // A killed process is reaped at once; the bound is for a process stuck in the kernel.
        if let Ok(Some(_)) = self.child.wait_timeout(Duration::from_secs(10)) {
            self.reaped = true;
        }
    }

    /// Waits until both output streams close or the deadline passes; whether they closed.
    fn drain(&self, deadline: Instant) -> bool {
        while !(self.stdout.closed() && self.stderr.closed()) {
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(POLL_INTERVAL);
        }
        true
    }

    /// Waits for the child to end, at most until its deadline. Past it, the child (and its
    /// process group, if it has one) is killed and what it printed so far is returned in the
    /// error. [`Running::wait`] is this, failing the test on a timeout.
    pub fn wait_or_timeout(mut self) -> Result<Output, TimedOut> {
        let deadline = self.started + self.timeout;
        let left = deadline.saturating_duration_since(Instant::now());
        let exited = match self.child.wait_timeout(left) {
            Ok(status) => status,
            Err(e) => panic!("cannot wait for `{}`: {e}", self.command),
        };
        let status = match exited {
            Some(status) => {
                self.reaped = true;
                if self.drain(deadline) {
                    return Ok(Output {
                        code: status.code(),
                        stdout: self.stdout.so_far(),
                        stderr: self.stderr.so_far(),
                    });
                }
                if self.group {
                    self.send("KILL");
                }
                Some(status)
            }
            None => {
                self.kill_now();
                // What was written before the kill is still in the pipes.
                self.drain(Instant::now() + Duration::from_secs(2));
                None
            }
        };
        Err(TimedOut {
            command: self.command.clone(),
            timeout: self.timeout,
            exited: status,
            group: self.group,
            stdout: self.stdout.so_far(),
            stderr: self.stderr.so_far(),
        })
    }

    /// Waits for the child to end; fails the test with the command, the timeout and the output
    /// so far if it does not end in time.
    #[track_caller]
    pub fn wait(self) -> Output {
        self.wait_or_timeout().unwrap_or_else(|t| panic!("{t}"))
    }

    /// SIGKILL, as a crash or the OOM killer would; returns what it printed until then.
    pub fn kill(mut self) -> Output {
        self.kill_now();
        assert!(self.reaped, "`{}` survived SIGKILL", self.command);
        self.drain(Instant::now() + Duration::from_secs(2));
        Output {
            code: self.exited().and_then(|s| s.code()),
            stdout: self.stdout.so_far(),
            stderr: self.stderr.so_far(),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if !self.reaped && self.exited().is_none() {
            self.kill_now();
        } else if self.group {
            // The child is gone, but what it started in its group may not be.
            self.send("KILL");
        }
    }
}
