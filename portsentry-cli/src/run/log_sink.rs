//! Where the detector's lines go (`--log-target`) and in which shape (`--log-format`).
//!
//! Two kinds of lines share one sink: the responders' lines (alerts, blocks, releases:
//! written by the core's `LogResponder` through a [`LineWriter`]) and the administrator's
//! lines (start, ports watched, reload, errors: [`Logger::admin`]). In the classic and v2
//! formats admin lines read `adminalert: ...` as in PortSentry; in JSON they are objects with
//! `"event":"admin"`.
//!
//! Batched: on standard output and standard error the responders' lines gather in a buffer
//! that is written with one call when an administrator's line comes, when it holds
//! [`BATCH_BYTES`], and when the run loop calls [`Logger::flush`] (after every turn, at most
//! 200 ms apart), so a burst of alerts costs one write, not one per line. Syslog takes one
//! datagram per line, as it must.

use std::io::{self, Write};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use clap::ValueEnum;
use portsentry_core::engine::Severity;
use portsentry_core::respond::log::JSON_SCHEMA;
use portsentry_core::respond::{LogResponder, LogStyle, Responder};

use super::syslog::{self, Syslog};

/// `--log-target`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum LogTarget {
    /// Standard output (the default in the foreground).
    Stdout,
    /// Standard error.
    Stderr,
    /// The local syslog daemon (`/dev/log`), facility daemon, ident portsentry (the default
    /// with -D).
    Syslog,
}

/// `--log-format`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub(crate) enum LogFormat {
    /// PortSentry 1.2's `attackalert:` / `adminalert:` lines.
    #[default]
    Classic,
    /// PortSentry 2.0's `Scan from: [...]` lines.
    V2,
    /// One JSON object per line (schema 1, documented in the library).
    Json,
}

impl LogFormat {
    /// The library's line style for this format.
    pub(crate) fn style(self) -> LogStyle {
        match self {
            Self::Classic => LogStyle::Classic,
            Self::V2 => LogStyle::V2,
            Self::Json => LogStyle::Json,
        }
    }
}

/// Responder lines buffered at most before they are written.
pub(crate) const BATCH_BYTES: usize = 64 * 1024;

enum Out {
    Stdout,
    Stderr,
    Syslog(Syslog),
}

/// The destination and the lines not written yet.
struct Sink {
    out: Out,
    pending: Vec<u8>,
}

impl Sink {
    /// Writes the pending lines with one call.
    fn flush(&mut self) {
        if self.pending.is_empty() {
            return;
        }
        // Lines that cannot be written have nowhere else to go: they are dropped.
        let _ = match self.out {
            Out::Stdout => io::stdout().lock().write_all(&self.pending),
            Out::Stderr => io::stderr().lock().write_all(&self.pending),
            Out::Syslog(_) => Ok(()),
        };
        self.pending.clear();
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        self.flush();
    }
}

/// The shared sink; cheap to clone.
#[derive(Clone)]
pub(crate) struct Logger {
    out: Arc<Mutex<Sink>>,
    format: LogFormat,
}

impl std::fmt::Debug for Logger {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Logger")
            .field("format", &self.format)
            .finish_non_exhaustive()
    }
}

impl Logger {
    /// Opens `target`. When syslog cannot be reached the lines go to standard error, and the
    /// reason is returned so that it can be said.
    pub(crate) fn open(target: LogTarget, format: LogFormat) -> (Self, Option<String>) {
        let (out, problem) = match target {
            LogTarget::Stdout => (Out::Stdout, None),
            LogTarget::Stderr => (Out::Stderr, None),
            LogTarget::Syslog => match Syslog::connect() {
                Ok(s) => (Out::Syslog(s), None),
                Err(e) => (
                    Out::Stderr,
                    Some(format!(
                        "cannot reach syslog at /dev/log ({e}); logging to standard error"
                    )),
                ),
            },
        };
        let logger = Self {
            out: Arc::new(Mutex::new(Sink {
                out,
                pending: Vec::new(),
            })),
            format,
        };
        (logger, problem)
    }

    fn lock(&self) -> MutexGuard<'_, Sink> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues one line as it is (sent at once to syslog).
    fn line(&self, level: u8, text: &str) {
        let mut sink = self.lock();
        if let Out::Syslog(s) = &mut sink.out {
            // A log line that cannot be written has nowhere else to go: it is dropped.
            let _ = s.send(level, text);
            return;
        }
        sink.pending.extend_from_slice(text.as_bytes());
        sink.pending.push(b'\n');
        if sink.pending.len() >= BATCH_BYTES {
            sink.flush();
        }
    }

    /// Writes the queued lines now.
    pub(crate) fn flush(&self) {
        self.lock().flush();
    }

    /// Writes an administrator's line (`adminalert: ...`, or a JSON `admin` event).
    pub(crate) fn admin(&self, severity: Severity, text: &str) {
        let level = match severity {
            Severity::Error => syslog::LEVEL_ERR,
            Severity::Warning => syslog::LEVEL_WARNING,
            _ => syslog::LEVEL_NOTICE,
        };
        let line = match self.format {
            LogFormat::Json => serde_json::json!({
                "timestamp": json_time_stamp(),
                "schema": JSON_SCHEMA,
                "event": "admin",
                "level": severity.as_str(),
                "message": text,
            })
            .to_string(),
            LogFormat::Classic | LogFormat::V2 => match severity {
                Severity::Error => format!("adminalert: ERROR: {text}"),
                Severity::Warning => format!("adminalert: WARNING: {text}"),
                _ => format!("adminalert: {text}"),
            },
        };
        self.line(level, &line);
        self.flush();
    }

    /// A log responder writing to this sink in this format.
    pub(crate) fn responder(&self) -> Box<dyn Responder> {
        Box::new(LogResponder::new(
            LineWriter {
                logger: self.clone(),
                pending: Vec::new(),
            },
            self.format.style(),
        ))
    }
}

fn json_time_stamp() -> String {
    jiff::Timestamp::now()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%Y-%m-%dT%H:%M:%S%.6fZ")
        .to_string()
}

/// A `Write` that hands each complete line to the [`Logger`].
pub(crate) struct LineWriter {
    logger: Logger,
    pending: Vec<u8>,
}

impl Write for LineWriter {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.pending.extend_from_slice(buf);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]);
            self.logger.line(syslog::LEVEL_NOTICE, &text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_lines_wait_for_a_flush_and_admin_lines_flush_them_in_order() {
        let (logger, problem) = Logger::open(LogTarget::Stderr, LogFormat::Classic);
        assert!(problem.is_none());
        let mut writer = LineWriter {
            logger: logger.clone(),
            pending: Vec::new(),
        };
        writer
            .write_all(b"attackalert: one\nattackalert: two\n")
            .unwrap();
        assert_eq!(
            logger.lock().pending,
            b"attackalert: one\nattackalert: two\n"
        );
        logger.admin(Severity::Info, "three");
        assert!(
            logger.lock().pending.is_empty(),
            "written with the admin line"
        );
        let big = "x".repeat(BATCH_BYTES / 2);
        writeln!(writer, "{big}").unwrap();
        assert!(!logger.lock().pending.is_empty());
        writeln!(writer, "{big}").unwrap();
        assert!(
            logger.lock().pending.is_empty(),
            "a full batch is written at once"
        );
        writeln!(writer, "four").unwrap();
        logger.flush();
        assert!(logger.lock().pending.is_empty());
    }

    #[test]
    fn json_time_stamps_are_rfc3339_utc_with_microseconds() {
        let stamp = json_time_stamp();
        assert_eq!(stamp.len(), "2026-11-24T22:13:06.940000Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }
}
