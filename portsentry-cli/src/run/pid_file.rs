//! The pid file of `-D`/`--pid-file`: refused when it names a live portsentry, written
//! atomically, removed at exit (only if it still holds our pid).

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use portsentry_core::respond::blocked_file;

use crate::state_files::process_alive;

/// The default pid file with `-D`.
pub(crate) const DEFAULT_PID_FILE: &str = "/run/portsentry.pid";

/// Fails when `path` names a process that is still alive.
pub(crate) fn check_free(path: &Path) -> anyhow::Result<()> {
    let Ok(text) = std::fs::read_to_string(path) else {
        return Ok(());
    };
    if let Ok(pid) = text.trim().parse::<u64>()
        && pid != u64::from(std::process::id())
        && process_alive(pid)
    {
        bail!(
            "another portsentry seems to run: pid file {} names the live process {pid}",
            path.display()
        );
    }
    Ok(())
}

/// A written pid file, removed on drop.
#[derive(Debug)]
pub(crate) struct PidFile {
    path: PathBuf,
    pid: u32,
}

impl PidFile {
    /// Writes this process's pid to `path`.
    pub(crate) fn write(path: &Path) -> anyhow::Result<Self> {
        let pid = std::process::id();
        blocked_file::write_atomic(path, &format!("{pid}\n"))
            .with_context(|| format!("cannot write the pid file {}", path.display()))?;
        Ok(Self {
            path: path.to_owned(),
            pid,
        })
    }
}

impl Drop for PidFile {
    fn drop(&mut self) {
        let ours =
            std::fs::read_to_string(&self.path).is_ok_and(|t| t.trim() == self.pid.to_string());
        if ours {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn written_checked_and_removed() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.pid");
        check_free(&path).unwrap();
        let file = PidFile::write(&path).unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            format!("{}\n", std::process::id())
        );
        // Our own pid does not count as "another portsentry".
        check_free(&path).unwrap();
        drop(file);
        assert!(!path.exists());
        // A live process (pid 1) in the file is refused; a dead one is not.
        std::fs::write(&path, "1\n").unwrap();
        assert!(check_free(&path).is_err());
        std::fs::write(&path, "4194304999\n").unwrap();
        check_free(&path).unwrap();
    }
}
