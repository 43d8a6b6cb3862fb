//! Commands left running by a daemon that died, found and ended before a new start decides
//! about their blocks.
//!
//! A block's journal record is written as pending before its command runs, so whatever the
//! command did before the daemon died, the next start completes or undoes that block. That
//! holds only if the command is over by then: a `KILL_ROUTE` still running when the daemon is
//! killed runs on, and could add its route *after* the next start undid the block, leaving a
//! firewall entry that no table knows.
//!
//! So every command carries, in its environment, the identity of the process that started
//! it ([`OWNER_VARIABLE`]: its pid and its start time, which together never repeat), and
//! [`end_orphaned_commands`], called at start, ends every process whose owner is no longer
//! running. Processes of other running daemons are left alone: their owner is alive.
//! A process that sets the variable itself can only make root end that same process, which its
//! owner could do anyway.

use std::fs;
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
use std::os::fd::OwnedFd;
use std::sync::OnceLock;

/// The environment variable that names the process that started a command:
/// `PID:START_TIME` (the start time in clock ticks since boot, from `/proc/PID/stat`).
pub(crate) const OWNER_VARIABLE: &str = "PORTSENTRY_COMMAND_OWNER";

/// This process's identity as [`OWNER_VARIABLE`] holds it.
pub(crate) fn own_identity() -> &'static str {
    static IDENTITY: OnceLock<String> = OnceLock::new();
    IDENTITY.get_or_init(|| {
        let pid = std::process::id();
        let start = start_time(pid).unwrap_or(0);
        format!("{pid}:{start}")
    })
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`), if it exists.
fn start_time(pid: u32) -> Option<u64> {
    let stat = fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) is in parentheses and may hold spaces and parentheses: the
    // fields after it start behind the last `)`. Field 22 is the 20th of those.
    let after_name = &stat[stat.rfind(')')? + 1..];
    after_name.split_whitespace().nth(19)?.parse().ok()
}

#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
/// True when the process `identity` (`PID:START_TIME`) still runs.
fn owner_alive(identity: &str) -> bool {
    let Some((pid, start)) = identity.split_once(':') else {
        return false;
    };
    match (pid.parse::<u32>(), start.parse::<u64>()) {
        // An owner that could not read its own start time (0) is taken as alive while its
        // pid exists: never end a running daemon's command on a guess.
        (Ok(pid), Ok(0)) => start_time(pid).is_some(),
        (Ok(pid), Ok(start)) => start_time(pid) == Some(start),
        _ => false,
    }
}

#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
/// The owner named in the environment of process `pid`, if any.
fn owner_of(pid: u32) -> Option<String> {
    let environ = fs::read(format!("/proc/{pid}/environ")).ok()?;
    let prefix = format!("{OWNER_VARIABLE}=");
    environ
        .split(|&b| b == 0)
        .find_map(|entry| entry.strip_prefix(prefix.as_bytes()))
        .map(|value| String::from_utf8_lossy(value).into_owned())
}

#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
/// Ends (`SIGKILL`) every process whose [`OWNER_VARIABLE`] names a process that no longer
/// runs, and waits (at most a few seconds) until they have exited; returns how many were
/// ended.
///
/// Each process is opened as a pidfd before its environment is read, and the signal goes
/// through that pidfd, so a pid reused meanwhile is never signalled. Waiting for the exit
/// matters: a process killed inside a system call (a route being added) finishes that call
/// before it dies. A killed shell may have started a child after the listing of `/proc`
/// passed it, so the listing is repeated until it finds none (a few rounds at most).
/// Processes whose environment cannot be read (another user's, without root) are skipped.
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
pub(crate) fn end_orphaned_commands() -> usize {
    let mut ended = 0;
    for _ in 0..MAX_ROUNDS {
        let killed = kill_orphans();
        if killed.is_empty() {
            break;
        }
        ended += killed.len();
        wait_for_exit(&killed, EXIT_WAIT);
    }
    ended
}

/// How many times [`end_orphaned_commands`] lists `/proc` at most.
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
const MAX_ROUNDS: usize = 5;
/// How long [`end_orphaned_commands`] waits for the processes of one round to exit.
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
const EXIT_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// One pass over `/proc`: the pidfds of the processes signalled.
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
fn kill_orphans() -> Vec<OwnedFd> {
    let Ok(entries) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    let own = own_identity();
    let mut killed = Vec::new();
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        let Some(pidfd) = open_pid(pid) else {
            continue;
        };
        let Some(owner) = owner_of(pid) else {
            continue;
        };
        if owner == own || owner_alive(&owner) {
            continue;
        }
        if rustix::process::pidfd_send_signal(&pidfd, rustix::process::Signal::KILL).is_ok() {
            killed.push(pidfd);
        }
    }
    killed
}

/// Waits until every process of `pidfds` has exited (a pidfd polls readable then), at most
/// `limit`.
#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
fn wait_for_exit(pidfds: &[OwnedFd], limit: std::time::Duration) {
    use std::os::fd::AsRawFd;
    let deadline = std::time::Instant::now() + limit;
    let mut waiting: Vec<libc::pollfd> = pidfds
        .iter()
        .map(|fd| libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    while !waiting.is_empty() {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || crate::capture::poll(&mut waiting, left).is_err() {
            return;
        }
        waiting.retain(|p| p.revents == 0);
    }
}

#[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
fn open_pid(pid: u32) -> Option<OwnedFd> {
    let pid = rustix::process::Pid::from_raw(i32::try_from(pid).ok()?)?;
    rustix::process::pidfd_open(pid, rustix::process::PidfdFlags::empty()).ok()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    #[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
    #[test]
    fn own_identity_names_a_running_process() {
        assert!(owner_alive(own_identity()), "{}", own_identity());
        assert!(!owner_alive("0:0"));
        assert!(!owner_alive("garbage"));
    }

    #[cfg(all(feature = "capture", feature = "procfs", target_os = "linux"))]
    /// A process started "by" a daemon that is gone is ended; one whose owner runs is not.
    #[test]
    fn only_commands_of_a_dead_owner_are_ended() {
        // An owner that ran and is gone: a short-lived child's identity.
        let mut gone = Command::new("true").spawn().unwrap();
        let gone_pid = gone.id();
        let gone_start = start_time(gone_pid).unwrap_or(1);
        gone.wait().unwrap();
        let spawn = |owner: &str| {
            Command::new("sleep")
                .arg("30")
                .env(OWNER_VARIABLE, owner)
                .stdout(Stdio::null())
                .spawn()
                .unwrap()
        };
        let mut orphan = spawn(&format!("{gone_pid}:{gone_start}"));
        let mut kept = spawn(own_identity());
        // Wait until the kernel shows the children's environment.
        let deadline = Instant::now() + Duration::from_secs(5);
        while owner_of(orphan.id()).is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(end_orphaned_commands() >= 1);
        let status = orphan.wait().unwrap();
        assert!(!status.success(), "the orphan was ended: {status:?}");
        assert_eq!(
            kept.try_wait().unwrap(),
            None,
            "a live owner's command runs on"
        );
        kept.kill().unwrap();
        kept.wait().unwrap();
    }
}
