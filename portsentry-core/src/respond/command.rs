//! Command templates (`KILL_ROUTE`, `KILL_RUN_CMD`, `UNBLOCK_CMD`) and running commands with
//! a time limit.
//!
//! Tokens, replaced everywhere they occur, in this order:
//!
//! | Token | Value |
//! |---|---|
//! | `$TARGET$` | the numeric address ([`address_text`]): never a resolved name, which an attacker controls through PTR records |
//! | `$PORT$` | the probed port, decimal (empty in a release, which has no port) |
//! | `$MODE$` | `tcp`, `udp`, `stcp`, `sudp`, `atcp` or `audp` (PortSentry 1.2's meaning; empty in a release) |
//!
//! Shell commands run through `/bin/sh -c` because the configurations people already have use
//! pipes and redirections. Each runs in its own process group with stdin from `/dev/null`
//! and stdout discarded; stderr is captured (up to 4 KiB) into the error. A command that
//! exceeds its time limit has its whole process group killed, and one left running by a
//! killed daemon is ended when the daemon starts again ([`super::orphans`]). Success means
//! exit status 0:
//! unlike PortSentry, a failing or missing command (status 127) is a failed block.
//! Prefer the [`NftSet`](super::NftSet) responder where you can: it runs `nft` with argv,
//! no shell involved.

use std::io::Read;
use std::net::IpAddr;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Child, ChildStderr, Command, ExitStatus, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use super::{ResponderError, address_text};
use crate::mode::Mode;

/// The default time limit for one command: 30 seconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// How much of a command's stderr is kept for the error message.
const STDERR_LIMIT: usize = 4096;

/// The values substituted into a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tokens {
    /// `$TARGET$`.
    pub target: IpAddr,
    /// `$PORT$`; `None` substitutes an empty string.
    pub port: Option<u16>,
    /// `$MODE$`; `None` substitutes an empty string.
    pub mode: Option<Mode>,
}

impl Tokens {
    /// The tokens of `alert`: its source, destination port and mode.
    pub fn of_alert(alert: &crate::event::Alert) -> Self {
        Self {
            target: alert.probe.source,
            port: Some(alert.probe.destination_port),
            mode: Some(alert.mode),
        }
    }
}

/// Replaces every `$TARGET$`, `$PORT$` and `$MODE$` in `template`. Nothing else is touched
/// (`\%` sequences of hosts.deny lines stay as written).
///
/// # Examples
///
/// ```
/// use portsentry_core::Mode;
/// use portsentry_core::respond::command::{Tokens, substitute};
/// let t = Tokens { target: "2001:db8::7".parse().unwrap(), port: Some(11), mode: Some(Mode::StealthTcp) };
/// assert_eq!(
///     substitute("block $TARGET$ $PORT$/$MODE$ ($TARGET$)", &t),
///     "block 2001:db8::7 11/stcp (2001:db8::7)"
/// );
/// ```
pub fn substitute(template: &str, tokens: &Tokens) -> String {
    let port = tokens.port.map(|p| p.to_string()).unwrap_or_default();
    let mode = tokens.mode.map(Mode::as_str).unwrap_or_default();
    template
        .replace("$TARGET$", &address_text(tokens.target))
        .replace("$PORT$", &port)
        .replace("$MODE$", mode)
}

/// A shell command template with its time limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShellCommand {
    template: String,
    timeout: Duration,
}

impl ShellCommand {
    /// A template run with [`DEFAULT_TIMEOUT`].
    pub fn new(template: impl Into<String>) -> Self {
        Self {
            template: template.into(),
            timeout: DEFAULT_TIMEOUT,
        }
    }

    /// Sets the time limit.
    #[must_use]
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The template as configured.
    pub fn template(&self) -> &str {
        &self.template
    }

    /// The command line for these tokens.
    pub fn render(&self, tokens: &Tokens) -> String {
        substitute(&self.template, tokens)
    }

    /// Renders the template and runs it with `/bin/sh -c`; returns the command line run.
    ///
    /// # Errors
    ///
    /// See [`run_shell`]. The error carries the rendered command line.
    pub fn run(&self, tokens: &Tokens) -> Result<String, (String, ResponderError)> {
        let line = self.render(tokens);
        match run_shell(&line, self.timeout) {
            Ok(()) => Ok(line),
            Err(e) => Err((line, e)),
        }
    }
}

/// Runs `command_line` with `/bin/sh -c`, waiting at most `timeout`.
///
/// # Errors
///
/// [`ResponderError::Spawn`] when `/bin/sh` cannot be started,
/// [`ResponderError::CommandFailed`] on any exit status but 0 (127: command not found),
/// [`ResponderError::Timeout`] when it ran too long (its process group is killed).
pub fn run_shell(command_line: &str, timeout: Duration) -> Result<(), ResponderError> {
    let mut cmd = Command::new("/bin/sh");
    cmd.arg("-c").arg(command_line);
    run(cmd, command_line, timeout).map(|_| ())
}

/// Runs a program with arguments (no shell), waiting at most `timeout`.
///
/// # Errors
///
/// As [`run_shell`]; [`ResponderError::Config`] when `argv` is empty.
pub fn run_argv(argv: &[String], timeout: Duration) -> Result<(), ResponderError> {
    let Some((program, args)) = argv.split_first() else {
        return Err(ResponderError::Config("empty command".to_owned()));
    };
    let mut cmd = Command::new(program);
    cmd.args(args);
    run(cmd, &argv.join(" "), timeout).map(|_| ())
}

fn run(mut cmd: Command, shown: &str, timeout: Duration) -> Result<ExitStatus, ResponderError> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .process_group(0);
    // A command left running by a killed daemon is ended at the next start, before its
    // block's journal record is acted on (see `orphans`).
    cmd.env(
        super::orphans::OWNER_VARIABLE,
        super::orphans::own_identity(),
    );
    let mut child = cmd.spawn().map_err(|source| ResponderError::Spawn {
        command: shown.to_owned(),
        source,
    })?;
    let mut stderr = Stderr::of(&mut child);
    let status = wait_with_deadline(&mut child, timeout, &mut stderr);
    // What the command wrote before it ended is in the pipe now; a daemonised grandchild
    // (`setsid cmd &`) that keeps the pipe open is not waited for: the pipe is closed here.
    stderr.drain();
    let stderr_text = String::from_utf8_lossy(&stderr.kept).trim().to_owned();
    match status {
        Some(Ok(status)) if status.success() => Ok(status),
        Some(Ok(status)) => Err(ResponderError::CommandFailed {
            command: shown.to_owned(),
            status: describe(status),
            stderr: stderr_text,
        }),
        Some(Err(source)) => Err(ResponderError::Spawn {
            command: shown.to_owned(),
            source,
        }),
        None => Err(ResponderError::Timeout {
            command: shown.to_owned(),
            timeout,
        }),
    }
}

/// The child's stderr, read without blocking by the thread that waits for the child (no
/// helper thread: nothing outlives the command, whatever its descendants keep open).
struct Stderr {
    pipe: Option<ChildStderr>,
    kept: Vec<u8>,
}

impl Stderr {
    fn of(child: &mut Child) -> Self {
        let pipe = child
            .stderr
            .take()
            .filter(|pipe| rustix::io::ioctl_fionbio(pipe, true).is_ok());
        Self {
            pipe,
            kept: Vec::new(),
        }
    }

    /// Reads what is in the pipe now (at most [`STDERR_LIMIT`] bytes are kept); closes the
    /// pipe at end of file or on an error.
    fn drain(&mut self) {
        let Some(pipe) = self.pipe.as_mut() else {
            return;
        };
        let mut buf = [0_u8; 1024];
        loop {
            match pipe.read(&mut buf) {
                Ok(0) => break self.pipe = None,
                Ok(n) => {
                    let room = STDERR_LIMIT.saturating_sub(self.kept.len());
                    self.kept.extend_from_slice(&buf[..n.min(room)]);
                }
                Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => break,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(_) => break self.pipe = None,
            }
        }
    }
}

/// Waits for the child, reading its stderr meanwhile; on timeout kills its process group
/// and returns `None`.
fn wait_with_deadline(
    child: &mut Child,
    timeout: Duration,
    stderr: &mut Stderr,
) -> Option<std::io::Result<ExitStatus>> {
    let deadline = Instant::now() + timeout;
    let mut pause = Duration::from_millis(1);
    loop {
        stderr.drain();
        match child.try_wait() {
            Ok(Some(status)) => return Some(Ok(status)),
            Ok(None) => {}
            Err(e) => return Some(Err(e)),
        }
        let now = Instant::now();
        if now >= deadline {
            kill_group(child);
            return None;
        }
        thread::sleep(pause.min(deadline - now));
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

fn kill_group(child: &mut Child) {
    let pid = rustix::process::Pid::from_child(child);
    // The child leads its own group (process_group(0)), so its pid is the group id.
    if rustix::process::kill_process_group(pid, rustix::process::Signal::KILL).is_err() {
        let _ = child.kill();
    }
    let _ = child.wait();
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(127), _) => "exit status 127: command not found".to_owned(),
        (Some(code), _) => format!("exit status {code}"),
        (None, Some(sig)) => format!("killed by signal {sig}"),
        (None, None) => status.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tokens(target: &str) -> Tokens {
        Tokens {
            target: target.parse().unwrap(),
            port: Some(31337),
            mode: Some(Mode::AdvancedUdp),
        }
    }

    #[test]
    fn substitutes_all_occurrences_of_each_token() {
        let out = substitute(
            "$TARGET$ $TARGET$ $PORT$ $PORT$ $MODE$ $MODE$ $OTHER$",
            &tokens("203.0.113.9"),
        );
        assert_eq!(out, "203.0.113.9 203.0.113.9 31337 31337 audp audp $OTHER$");
    }

    #[test]
    fn ipv6_target_is_canonical_and_mapped_v4_is_v4() {
        assert_eq!(
            substitute(
                "$TARGET$",
                &tokens("2001:0db8:0000:0000:0000:0000:0000:0042")
            ),
            "2001:db8::42"
        );
        assert_eq!(
            substitute("$TARGET$", &tokens("::ffff:198.51.100.4")),
            "198.51.100.4"
        );
    }

    #[test]
    fn every_mode_name() {
        let names: Vec<String> = Mode::ALL
            .iter()
            .map(|m| {
                substitute(
                    "$MODE$",
                    &Tokens {
                        mode: Some(*m),
                        ..tokens("203.0.113.1")
                    },
                )
            })
            .collect();
        assert_eq!(names, ["tcp", "udp", "stcp", "sudp", "atcp", "audp"]);
    }

    #[test]
    fn release_tokens_are_empty() {
        let t = Tokens {
            target: "203.0.113.1".parse().unwrap(),
            port: None,
            mode: None,
        };
        assert_eq!(substitute("x$PORT$y$MODE$z", &t), "xyz");
    }

    #[test]
    fn successful_shell_command_with_pipe() {
        let dir = tempfile::tempdir().unwrap();
        let out = dir.path().join("out");
        let cmd = ShellCommand::new(format!(
            "echo $TARGET$ $PORT$ | tr 0-9 a-j > {}",
            out.display()
        ));
        let line = cmd.run(&tokens("203.0.113.9")).unwrap();
        assert!(line.contains("203.0.113.9 31337"));
        assert_eq!(std::fs::read_to_string(out).unwrap(), "cad.a.bbd.j dbddh\n");
    }

    #[test]
    fn failing_command_reports_status_and_stderr() {
        let err = run_shell("echo bad thing >&2; exit 3", DEFAULT_TIMEOUT).unwrap_err();
        match &err {
            ResponderError::CommandFailed { status, stderr, .. } => {
                assert_eq!(status, "exit status 3");
                assert_eq!(stderr, "bad thing");
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn missing_command_is_a_failure() {
        let err = run_shell("/nonexistent/portsentry-test-cmd 1 2", DEFAULT_TIMEOUT).unwrap_err();
        match err {
            ResponderError::CommandFailed { status, stderr, .. } => {
                assert!(status.contains("127"), "{status}");
                assert!(
                    stderr.contains("not found") || stderr.contains("No such file"),
                    "{stderr}"
                );
            }
            other => panic!("unexpected {other:?}"),
        }
    }

    #[test]
    fn timeout_kills_the_whole_process_group() {
        let dir = tempfile::tempdir().unwrap();
        let pidfile = dir.path().join("pid");
        // The shell starts a background grandchild that would outlive a plain kill of sh.
        let line = format!("sleep 30 & echo $! > {}; wait", pidfile.display());
        let start = Instant::now();
        let err = run_shell(&line, Duration::from_millis(300)).unwrap_err();
        assert!(matches!(err, ResponderError::Timeout { .. }), "{err:?}");
        assert!(start.elapsed() < Duration::from_secs(20));
        let pid: u32 = std::fs::read_to_string(&pidfile)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        // The grandchild must be gone (or a zombie reaped by init shortly).
        let gone = (0..100).any(|_| {
            let alive = std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .map(|s| !s.contains(") Z "))
                .unwrap_or(false);
            if alive {
                thread::sleep(Duration::from_millis(20));
            }
            !alive
        });
        assert!(gone, "grandchild {pid} survived the timeout");
    }

    /// The issue's reproduction: a command that daemonises a child (`setsid ... &`) kept our
    /// stderr reader thread alive as long as the child held the pipe. Now nothing is left
    /// behind and the command's own stderr is still reported.
    #[test]
    fn a_daemonising_command_leaves_no_reader_behind() {
        let before = Instant::now();
        let err = run_shell(
            "setsid sleep 5 </dev/null >/dev/null & echo 'said before exit' >&2; exit 3",
            Duration::from_secs(10),
        )
        .unwrap_err();
        let ResponderError::CommandFailed { status, stderr, .. } = err else {
            panic!("{err:?}");
        };
        assert_eq!(
            (status.as_str(), stderr.as_str()),
            ("exit status 3", "said before exit")
        );
        // The grandchild still holds the pipe for 5 s: the old reader waited for it.
        assert!(
            before.elapsed() < Duration::from_secs(4),
            "{:?}",
            before.elapsed()
        );
    }

    #[test]
    fn argv_runs_without_a_shell() {
        let argv = vec!["/bin/echo".to_owned(), "$TARGET$; exit 1".to_owned()];
        run_argv(&argv, DEFAULT_TIMEOUT).unwrap();
        assert!(matches!(
            run_argv(&[], DEFAULT_TIMEOUT),
            Err(ResponderError::Config(_))
        ));
        let missing = vec!["/nonexistent/prog".to_owned()];
        assert!(matches!(
            run_argv(&missing, DEFAULT_TIMEOUT),
            Err(ResponderError::Spawn { .. })
        ));
    }
}
