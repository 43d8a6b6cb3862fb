//! `HISTORY_FILE`: the append-only record of alerts that fail2ban reads.
//!
//! The file is opened in append mode, created (with its parent directories) when missing,
//! and **never truncated** (PortSentry 2.0 truncated it at every start). Each line is written
//! with one `write` on an `O_APPEND` descriptor, so concurrent writers cannot interleave
//! inside a line. [`Responder::flush`] reopens the file, for log rotation on reload.
//!
//! Line formats (`HISTORY_FORMAT`):
//!
//! * [`HistoryFormat::Classic`] (default), PortSentry 1.2's line in local time, which the
//!   stock fail2ban `portsentry` filter matches unchanged:
//!   `1795558386 - 11/24/2026 22:13:06 Host: 203.0.113.2/203.0.113.2 Port: 11 TCP Blocked`.
//!   Written for every alert whose blocking did not fail, including `BLOCK_x=0` alerts, as
//!   1.2 did: with log-only PortSentry, fail2ban is the one that blocks, so it needs the line.
//!   "Blocked" is a literal part of the format. An alert whose block failed writes no classic
//!   line (1.2 did not either); the next probe alerts and tries again.
//! * [`HistoryFormat::V2`], PortSentry 2.0's line with a local time stamp:
//!   `2026-11-24T22:13:06.940+0000 Scan from: [203.0.113.2] (203.0.113.2) protocol: [TCP] ...`,
//!   one per alert, with the real `noblock`/`blocked` flags. Ignored and below-trigger probes
//!   are not written (2.0 wrote them, and its fail2ban filter then banned them).
//! * [`HistoryFormat::Json`]: the JSON lines of [`log`](super::log) (schema documented
//!   there): one `alert` object per alert and one `released` object per release.
//!
//! The shipped fail2ban filters for each format are in `contrib/fail2ban/`.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::tz::TimeZone;

use super::log::{LogStyle, alert_flags, alert_json, release_lines, scan_from_line};
use super::{
    AlertContext, BlockStatus, Outcome, ReleaseContext, Responder, ResponderError, address_text,
    timefmt,
};
use crate::config::{Config, HistoryFormat};

/// The classic (PortSentry 1.2) history line for an alert, time in `tz`.
///
/// # Examples
///
/// ```
/// use jiff::tz::TimeZone;
/// use portsentry_core::respond::history::classic_line;
/// use portsentry_core::{Alert, BlockMode, Mode, Probe, Protocol, ScanKind, Timestamp};
/// let probe = Probe {
///     at: Timestamp::from_secs(1_795_558_386),
///     source: "203.0.113.2".parse().unwrap(),
///     destination: "198.51.100.1".parse().unwrap(),
///     protocol: Protocol::Tcp,
///     source_port: 40000,
///     destination_port: 11,
///     kind: ScanKind::Syn,
///     ip_options: false,
/// };
/// let alert = Alert { probe, mode: Mode::StealthTcp, distinct_ports: 1, response: BlockMode::Block };
/// assert_eq!(
///     classic_line(&alert, None, &TimeZone::UTC),
///     "1795558386 - 11/24/2026 22:13:06 Host: 203.0.113.2/203.0.113.2 Port: 11 TCP Blocked"
/// );
/// ```
pub fn classic_line(alert: &crate::Alert, host_name: Option<&str>, tz: &TimeZone) -> String {
    let probe = &alert.probe;
    let ip = address_text(probe.source);
    format!(
        "{} - {} Host: {}/{ip} Port: {} {} Blocked",
        probe.at.as_secs(),
        timefmt::classic(probe.at, tz),
        host_name.unwrap_or(&ip),
        probe.destination_port,
        probe.protocol.as_upper_str(),
    )
}

/// The PortSentry 2.0 history line for an alert: local time stamp + `Scan from:` line.
pub fn v2_line(ctx: &AlertContext<'_>, tz: &TimeZone) -> String {
    let probe = &ctx.alert.probe;
    format!(
        "{} {}",
        timefmt::v2(probe.at, tz),
        scan_from_line(probe, ctx.host_name, alert_flags(ctx.block))
    )
}

/// Appends alert lines to `HISTORY_FILE`; see the [module docs](self).
#[derive(Debug)]
pub struct HistoryResponder {
    path: PathBuf,
    file: File,
    format: HistoryFormat,
    tz: TimeZone,
}

/// Opens the history file append-only, never through a symbolic link
/// ([`state_file::open_append`]).
fn open_append(path: &Path) -> Result<File, ResponderError> {
    crate::state_file::open_append(path).map_err(|source| ResponderError::Io {
        path: path.to_owned(),
        source,
    })
}

impl HistoryResponder {
    /// Opens (creating if needed, never truncating) `path`; time stamps use the system time
    /// zone (`TZ`, else `/etc/localtime`, else UTC).
    ///
    /// # Errors
    ///
    /// [`ResponderError::Io`] when the directory or file cannot be created or opened.
    pub fn open(path: impl Into<PathBuf>, format: HistoryFormat) -> Result<Self, ResponderError> {
        let path = path.into();
        let file = open_append(&path)?;
        Ok(Self {
            path,
            file,
            format,
            tz: TimeZone::system(),
        })
    }

    /// The responder for `HISTORY_FILE` / `HISTORY_FORMAT`, or `None` when no history file
    /// is configured.
    ///
    /// # Errors
    ///
    /// As [`HistoryResponder::open`].
    pub fn from_config(config: &Config) -> Result<Option<Self>, ResponderError> {
        config
            .history_file
            .as_ref()
            .map(|p| Self::open(p.clone(), config.history_format))
            .transpose()
    }

    /// Uses `tz` for local time stamps instead of the system zone.
    #[must_use]
    pub fn with_time_zone(mut self, tz: TimeZone) -> Self {
        self.tz = tz;
        self
    }

    /// The file written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn append(&mut self, line: &str) -> Result<(), ResponderError> {
        let mut buf = String::with_capacity(line.len() + 1);
        buf.push_str(line);
        buf.push('\n');
        self.file
            .write_all(buf.as_bytes())
            .map_err(|source| ResponderError::Io {
                path: self.path.clone(),
                source,
            })
    }
}

impl Responder for HistoryResponder {
    fn name(&self) -> &str {
        "history"
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        let line = match self.format {
            HistoryFormat::Classic if ctx.block == BlockStatus::Failed => {
                return Ok(Outcome::Skipped);
            }
            HistoryFormat::Classic => classic_line(ctx.alert, ctx.host_name, &self.tz),
            HistoryFormat::V2 => v2_line(ctx, &self.tz),
            HistoryFormat::Json => alert_json(ctx),
        };
        self.append(&line)?;
        Ok(Outcome::Reported)
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        if self.format != HistoryFormat::Json {
            return Ok(Outcome::Skipped);
        }
        for line in release_lines(LogStyle::Json, ctx) {
            self.append(&line)?;
        }
        Ok(Outcome::Reported)
    }

    /// Reopens the file (after log rotation).
    fn flush(&mut self) -> Result<(), ResponderError> {
        self.file = open_append(&self.path)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::BlockMode;
    use crate::event::Release;
    use crate::mode::Mode;
    use crate::probe::Timestamp;
    use crate::respond::Fanout;
    use crate::respond::test_support::alert;
    use std::fs;
    use std::process::Command;

    fn ctx(a: &crate::Alert, block: BlockStatus) -> AlertContext<'_> {
        AlertContext {
            alert: a,
            host_name: None,
            block,
            steps: &[],
        }
    }

    #[test]
    fn appends_and_never_truncates() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("var/lib/portsentry/portsentry.history");
        let a = alert("203.0.113.2", 11, Mode::StealthTcp, BlockMode::Block);
        {
            let mut h = HistoryResponder::open(&path, HistoryFormat::Classic)
                .unwrap()
                .with_time_zone(TimeZone::UTC);
            h.on_alert(&ctx(&a, BlockStatus::Blocked)).unwrap();
        }
        {
            // A restart: the old line must still be there.
            let mut h = HistoryResponder::open(&path, HistoryFormat::Classic)
                .unwrap()
                .with_time_zone(TimeZone::UTC);
            h.on_alert(&ctx(&a, BlockStatus::NotRequested)).unwrap();
            h.on_alert(&ctx(&a, BlockStatus::Failed)).unwrap();
        }
        let line =
            "1795558386 - 11/24/2026 22:13:06 Host: 203.0.113.2/203.0.113.2 Port: 11 TCP Blocked";
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            format!("{line}\n{line}\n")
        );
    }

    /// The issue's reproduction: a link planted as the history file made root append to
    /// the 0600 file it pointed at.
    #[test]
    fn a_link_as_history_file_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let secret = dir.path().join("secret");
        fs::write(&secret, "private\n").unwrap();
        let path = dir.path().join("portsentry.history");
        std::os::unix::fs::symlink(&secret, &path).unwrap();
        let err = HistoryResponder::open(&path, HistoryFormat::Classic).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&secret).unwrap(), "private\n");
    }

    #[test]
    fn flush_reopens_after_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("h");
        let a = alert("203.0.113.2", 11, Mode::StealthTcp, BlockMode::Block);
        let mut h = HistoryResponder::open(&path, HistoryFormat::V2).unwrap();
        h.on_alert(&ctx(&a, BlockStatus::Blocked)).unwrap();
        fs::rename(&path, dir.path().join("h.1")).unwrap();
        h.flush().unwrap();
        h.on_alert(&ctx(&a, BlockStatus::Blocked)).unwrap();
        assert_eq!(fs::read_to_string(&path).unwrap().lines().count(), 1);
        assert_eq!(
            fs::read_to_string(dir.path().join("h.1"))
                .unwrap()
                .lines()
                .count(),
            1
        );
    }

    #[test]
    fn v2_line_exact() {
        let a = alert("127.0.0.10", 11, Mode::StealthTcp, BlockMode::Block);
        assert_eq!(
            v2_line(&ctx(&a, BlockStatus::Blocked), &TimeZone::UTC),
            "2026-11-24T22:13:06.940+0000 Scan from: [127.0.0.10] (127.0.0.10) protocol: [TCP] port: [11] type: [TCP SYN/Normal scan] IP opts: [not set] ignored: [false] triggered: [true] noblock: [false] blocked: [true]"
        );
    }

    // ---- fail2ban: our filters, and Debian's stock filter, against lines we write ----

    fn fail2ban_regex(log: &Path, filter: &Path) -> Option<(usize, usize)> {
        let out = match Command::new("fail2ban-regex").arg(log).arg(filter).output() {
            Ok(out) => out,
            Err(_) => {
                eprintln!("skipping: fail2ban-regex is not installed (apt-get install fail2ban)");
                return None;
            }
        };
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            out.status.success(),
            "fail2ban-regex failed: {text}\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // "Lines: 4 lines, 0 ignored, 3 matched, 1 missed"
        let summary = text
            .lines()
            .find(|l| l.starts_with("Lines:"))
            .unwrap_or_else(|| panic!("no summary in {text}"));
        let number_before = |word: &str| -> usize {
            let words: Vec<&str> = summary
                .split([' ', ','])
                .filter(|w| !w.is_empty())
                .collect();
            let i = words.iter().position(|w| *w == word).unwrap();
            words[i - 1].parse().unwrap()
        };
        Some((number_before("matched"), number_before("missed")))
    }

    fn contrib(name: &str) -> PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../contrib/fail2ban/filter.d")
            .join(name)
    }

    /// Writes alerts (v4, v6, TCP, UDP, blocked, log-only) through a Fanout with the history
    /// responder, the way the daemon does, plus a release.
    fn write_history(format: HistoryFormat, path: &Path) -> usize {
        let mut fanout = Fanout::new().with(HistoryResponder::open(path, format).unwrap());
        let alerts = [
            alert("203.0.113.2", 11, Mode::StealthTcp, BlockMode::Block),
            alert("2001:db8::7", 31337, Mode::AdvancedTcp, BlockMode::LogOnly),
            alert("198.51.100.9", 7, Mode::StealthUdp, BlockMode::LogOnly),
            alert("203.0.113.3", 12, Mode::Tcp, BlockMode::Block),
        ];
        let now = jiff::Timestamp::now().as_microsecond();
        for (i, mut a) in alerts.into_iter().enumerate() {
            // fail2ban only counts recent lines against findtime; use the present.
            a.probe.at = Timestamp::from_micros(u64::try_from(now).unwrap() + i as u64);
            let report = fanout.handle_alert(&a, None);
            assert!(report.responders.iter().all(|r| r.result.is_ok()));
        }
        let release = Release {
            address: "203.0.113.2".parse().unwrap(),
            blocked_at: Timestamp::from_secs(1),
            released_at: Timestamp::from_micros(u64::try_from(now).unwrap()),
            mode: crate::Mode::StealthTcp,
            port: 79,
        };
        fanout.handle_release(&release, None);
        alerts.len()
    }

    #[test]
    fn fail2ban_filters_match_every_alert_line_we_write() {
        for (format, filter) in [
            (HistoryFormat::Classic, "portsentry-rs-classic.conf"),
            (HistoryFormat::V2, "portsentry-rs-v2.conf"),
            (HistoryFormat::Json, "portsentry-rs-json.conf"),
        ] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("history");
            let alerts = write_history(format, &path);
            let Some((matched, missed)) = fail2ban_regex(&path, &contrib(filter)) else {
                return;
            };
            let total = fs::read_to_string(&path).unwrap().lines().count();
            assert_eq!(
                matched,
                alerts,
                "{filter}: {}",
                fs::read_to_string(&path).unwrap()
            );
            // JSON also holds the release line, which must not match.
            assert_eq!(missed, total - alerts, "{filter}");
        }
    }

    #[test]
    fn stock_debian_filter_matches_classic_lines() {
        let stock = Path::new("/etc/fail2ban/filter.d/portsentry.conf");
        if !stock.exists() {
            eprintln!(
                "skipping: {} not present (apt-get install fail2ban)",
                stock.display()
            );
            return;
        }
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("history");
        let alerts = write_history(HistoryFormat::Classic, &path);
        let Some((matched, missed)) = fail2ban_regex(&path, stock) else {
            return;
        };
        assert_eq!((matched, missed), (alerts, 0));
    }

    #[test]
    fn fail2ban_filters_reject_ignored_and_below_trigger_lines() {
        // Lines in the 2.0 shape that must never ban: ignored, below trigger. Our own history
        // never writes them, but a 2.0 history file (or a log) may contain them.
        let a = alert("203.0.113.20", 11, Mode::StealthTcp, BlockMode::Block);
        let now =
            Timestamp::from_micros(u64::try_from(jiff::Timestamp::now().as_microsecond()).unwrap());
        let mut probe = a.probe;
        probe.at = now;
        let ts = timefmt::v2(now, &TimeZone::system());
        let ignored = crate::respond::log::notice_lines(
            LogStyle::V2,
            &crate::respond::Notice::Ignored {
                probe: &probe,
                reason: crate::IgnoreReason::IgnoreFile,
                host_name: None,
            },
        );
        let below = scan_from_line(
            &probe,
            None,
            crate::respond::log::V2Flags {
                ignored: Some(false),
                triggered: Some(false),
                ..Default::default()
            },
        );
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("v2");
        fs::write(&path, format!("{ts} {}\n{ts} {below}\n", ignored[0])).unwrap();
        if let Some((matched, missed)) = fail2ban_regex(&path, &contrib("portsentry-rs-v2.conf")) {
            assert_eq!((matched, missed), (0, 2));
        }
        // JSON: ignored/already-blocked notices and releases must not match.
        let json_lines = [
            crate::respond::log::notice_lines(
                LogStyle::Json,
                &crate::respond::Notice::Ignored {
                    probe: &probe,
                    reason: crate::IgnoreReason::Gateway,
                    host_name: None,
                },
            ),
            crate::respond::log::notice_lines(
                LogStyle::Json,
                &crate::respond::Notice::AlreadyBlocked {
                    probe: &probe,
                    host_name: None,
                },
            ),
        ]
        .concat();
        let path = dir.path().join("json");
        fs::write(&path, json_lines.join("\n") + "\n").unwrap();
        if let Some((matched, missed)) = fail2ban_regex(&path, &contrib("portsentry-rs-json.conf"))
        {
            assert_eq!((matched, missed), (0, 2));
        }
    }
}
