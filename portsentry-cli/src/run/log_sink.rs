//! Where the detector's lines go (`--log-target`) and in which shape (`--log-format`).
//!
//! Two kinds of lines share one sink: the responders' lines (alerts, blocks, releases:
//! written by the core's `LogResponder` through a [`LineWriter`]) and the administrator's
//! lines (start, ports watched, reload, errors: [`Logger::admin`]). In the classic and v2
//! formats admin lines read `adminalert: ...` as in PortSentry; in JSON they are objects with
//! `"event":"admin"`.

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

enum Out {
    Stdout,
    Stderr,
    Syslog(Syslog),
}

/// The shared sink; cheap to clone.
#[derive(Clone)]
pub(crate) struct Logger {
    out: Arc<Mutex<Out>>,
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
            out: Arc::new(Mutex::new(out)),
            format,
        };
        (logger, problem)
    }

    fn lock(&self) -> MutexGuard<'_, Out> {
        self.out.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Writes one line as it is.
    fn line(&self, level: u8, text: &str) {
        let mut out = self.lock();
        // A log line that cannot be written has nowhere else to go: it is dropped.
        let _ = match &mut *out {
            Out::Stdout => writeln!(io::stdout().lock(), "{text}"),
            Out::Stderr => writeln!(io::stderr().lock(), "{text}"),
            Out::Syslog(s) => s.send(level, text),
        };
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
    fn json_time_stamps_are_rfc3339_utc_with_microseconds() {
        let stamp = json_time_stamp();
        assert_eq!(stamp.len(), "2026-11-24T22:13:06.940000Z".len(), "{stamp}");
        assert!(stamp.ends_with('Z'));
    }
}
