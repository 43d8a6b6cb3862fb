//! Syslog without libc: datagrams to `/dev/log`, facility daemon, ident `portsentry`.
//!
//! Each line becomes one RFC 3164 message, `<PRI>Mmm dd hh:mm:ss portsentry[PID]: text`, the
//! shape `openlog("portsentry", LOG_PID, LOG_DAEMON)` gives, so existing rsyslog rules and
//! fail2ban jails written for PortSentry keep matching. When the syslog daemon restarts, the
//! socket is reconnected once per failed send.

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};

/// `LOG_DAEMON` (3) shifted into the facility bits.
const FACILITY_DAEMON: u8 = 3 << 3;
/// `LOG_ERR`.
pub(crate) const LEVEL_ERR: u8 = 3;
/// `LOG_WARNING`.
pub(crate) const LEVEL_WARNING: u8 = 4;
/// `LOG_NOTICE`: PortSentry logs everything at this level.
pub(crate) const LEVEL_NOTICE: u8 = 5;

/// The standard local syslog socket.
const DEV_LOG: &str = "/dev/log";

/// A connection to the local syslog daemon.
#[derive(Debug)]
pub(crate) struct Syslog {
    path: PathBuf,
    socket: UnixDatagram,
    pid: u32,
}

impl Syslog {
    /// Connects to `/dev/log`.
    pub(crate) fn connect() -> io::Result<Self> {
        Self::connect_to(Path::new(DEV_LOG))
    }

    /// Connects to the syslog socket at `path`.
    pub(crate) fn connect_to(path: &Path) -> io::Result<Self> {
        let socket = UnixDatagram::unbound()?;
        socket.connect(path)?;
        Ok(Self {
            path: path.to_owned(),
            socket,
            pid: std::process::id(),
        })
    }

    /// Sends one line at `level` (`LEVEL_*`).
    pub(crate) fn send(&mut self, level: u8, text: &str) -> io::Result<()> {
        let message = format_message(level, self.pid, &local_time_stamp(), text);
        if self.socket.send(message.as_bytes()).is_ok() {
            return Ok(());
        }
        // The syslog daemon may have restarted: reconnect once.
        let socket = UnixDatagram::unbound()?;
        socket.connect(&self.path)?;
        self.socket = socket;
        self.socket.send(message.as_bytes()).map(drop)
    }
}

fn local_time_stamp() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%b %e %H:%M:%S")
        .to_string()
}

/// `<PRI>STAMP portsentry[PID]: text`.
fn format_message(level: u8, pid: u32, stamp: &str, text: &str) -> String {
    format!(
        "<{}>{stamp} portsentry[{pid}]: {text}",
        FACILITY_DAEMON | level
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_shape_is_daemon_notice_with_ident_and_pid() {
        assert_eq!(
            format_message(LEVEL_NOTICE, 42, "Nov 24 22:13:06", "attackalert: x"),
            "<29>Nov 24 22:13:06 portsentry[42]: attackalert: x"
        );
        assert!(format_message(LEVEL_ERR, 1, "s", "t").starts_with("<27>"));
    }

    #[test]
    fn lines_reach_a_syslog_socket() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        let server = UnixDatagram::bind(&path).unwrap();
        let mut log = Syslog::connect_to(&path).unwrap();
        log.send(LEVEL_NOTICE, "adminalert: hello").unwrap();
        let mut buf = [0u8; 256];
        let n = server.recv(&mut buf).unwrap();
        let got = std::str::from_utf8(&buf[..n]).unwrap();
        assert!(got.starts_with("<29>"), "{got}");
        assert!(
            got.ends_with(&format!(
                "portsentry[{}]: adminalert: hello",
                std::process::id()
            )),
            "{got}"
        );
    }
}
