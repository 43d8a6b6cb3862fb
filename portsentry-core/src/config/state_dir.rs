//! Where state files (`HISTORY_FILE`, `BLOCKED_FILE`) with relative paths go.

use std::ffi::OsString;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

/// The directory for state files given with a relative path, chosen in this order:
///
/// 1. `$STATE_DIRECTORY` (set by systemd's `StateDirectory=portsentry`; the first entry of a
///    colon-separated list),
/// 2. `/var/lib/portsentry` when running as root,
/// 3. `$XDG_STATE_HOME/portsentry` when that variable holds an absolute path,
/// 4. `$HOME/.local/state/portsentry`,
/// 5. `/var/lib/portsentry` as a last resort.
///
/// The directory is only named here, not created. This reads the environment, so the
/// detection code never calls it; the CLI does, once, and passes the result to
/// [`Config::resolve_state_paths`](super::Config::resolve_state_paths).
pub fn state_directory() -> PathBuf {
    choose_state_directory(|name| std::env::var_os(name), running_as_root())
}

/// True when the effective user is root. Linux-only: `/proc/self` belongs to the effective
/// user of the process (proc(5)); without `/proc` this answers false.
pub fn running_as_root() -> bool {
    std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// The choice behind [`state_directory`], with the environment and the root question given.
pub fn choose_state_directory(env: impl Fn(&str) -> Option<OsString>, root: bool) -> PathBuf {
    let absolute = |value: OsString| {
        let path = PathBuf::from(value);
        path.is_absolute().then_some(path)
    };
    if let Some(dirs) = env("STATE_DIRECTORY")
        && let Some(first) = dirs.to_string_lossy().split(':').next()
        && let Some(dir) = absolute(OsString::from(first))
    {
        return dir;
    }
    let system = PathBuf::from("/var/lib/portsentry");
    if root {
        return system;
    }
    if let Some(dir) = env("XDG_STATE_HOME").and_then(absolute) {
        return dir.join("portsentry");
    }
    if let Some(home) = env("HOME").and_then(absolute) {
        return home.join(".local/state/portsentry");
    }
    system
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<OsString> {
        move |name| {
            pairs
                .iter()
                .find(|(k, _)| *k == name)
                .map(|(_, v)| OsString::from(v))
        }
    }

    #[test]
    fn order_of_choice() {
        let all = env(&[
            ("STATE_DIRECTORY", "/run/sd/portsentry:/other"),
            ("XDG_STATE_HOME", "/home/u/.state"),
            ("HOME", "/home/u"),
        ]);
        assert_eq!(
            choose_state_directory(&all, false),
            PathBuf::from("/run/sd/portsentry")
        );
        let user = env(&[("XDG_STATE_HOME", "/home/u/.state"), ("HOME", "/home/u")]);
        assert_eq!(
            choose_state_directory(&user, true),
            PathBuf::from("/var/lib/portsentry")
        );
        assert_eq!(
            choose_state_directory(&user, false),
            PathBuf::from("/home/u/.state/portsentry")
        );
        let home = env(&[("XDG_STATE_HOME", "relative"), ("HOME", "/home/u")]);
        assert_eq!(
            choose_state_directory(&home, false),
            PathBuf::from("/home/u/.local/state/portsentry")
        );
        assert_eq!(
            choose_state_directory(env(&[]), false),
            PathBuf::from("/var/lib/portsentry")
        );
    }

    #[test]
    fn root_check_agrees_with_proc() {
        // /proc/self/status names the effective uid as the second field of "Uid:".
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let euid = status
            .lines()
            .find_map(|l| l.strip_prefix("Uid:"))
            .and_then(|l| l.split_whitespace().nth(1))
            .unwrap();
        assert_eq!(running_as_root(), euid == "0");
    }
}
