//! The daemon's log lines of a `Sensor` (PortSentry 1.2 `attackalert:` lines, block steps,
//! failed blocks, notices), kept in a bounded ring for `SensorStatus.log`: the library's own
//! `LogResponder` writes into it.

use std::collections::VecDeque;
use std::io::Write;
use std::sync::Arc;

use parking_lot::Mutex;

/// How many lines are kept (the oldest go first).
const KEPT_LINES: usize = 500;

/// The latest log lines, shared by the writer and the status.
#[derive(Clone, Default)]
pub(crate) struct LogLines(Arc<Mutex<VecDeque<String>>>);

impl LogLines {
    /// The lines kept now, oldest first.
    pub(crate) fn lines(&self) -> Vec<String> {
        self.0.lock().iter().cloned().collect()
    }

    /// A writer for a `LogResponder` (one per responder set: it buffers a partial line).
    pub(crate) fn writer(&self) -> LogWriter {
        LogWriter {
            lines: self.clone(),
            partial: Vec::new(),
        }
    }
}

/// Splits what a `LogResponder` writes into lines for [`LogLines`].
pub(crate) struct LogWriter {
    lines: LogLines,
    partial: Vec<u8>,
}

impl Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            let mut ring = self.lines.0.lock();
            if ring.len() >= KEPT_LINES {
                ring.pop_front();
            }
            ring.push_back(text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
