//! The live engine of a `Sensor` on its own thread: the daemon's runtime
//! ([`portsentry_core::engine::Engine`]), turned until stopped. No Python here: the thread
//! never takes the interpreter lock, so Python code can never stall capture.

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use portsentry_core::engine::{
    Engine, EngineError, EngineOptions, EngineStatus, Message, Settings, Severity, Sources,
};

/// How long one engine turn waits for traffic: the longest a stop request waits.
const TURN_WAIT: Duration = Duration::from_millis(100);
/// How many of the engine's messages are kept for `status()`.
const KEPT_MESSAGES: usize = 200;
/// How long a second `stop()` waits for the first one's engine shutdown (itself bounded by
/// `STOP_TIMEOUT`).
const SECOND_STOP_WAIT: Duration = Duration::from_secs(120);
/// How long `status()` waits for the engine thread to take a snapshot.
const STATUS_WAIT: Duration = Duration::from_secs(2);

/// A running engine thread.
pub(crate) struct Live {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

struct Shared {
    state: Mutex<State>,
    changed: Condvar,
}

struct State {
    stop: bool,
    want_status: bool,
    generation: u64,
    status: EngineStatus,
    finished: bool,
    failure: Option<String>,
    messages: VecDeque<Message>,
    errors: u64,
}

impl Shared {
    /// Waits while `busy` holds, at most `wait`.
    fn wait_while(
        &self,
        state: &mut parking_lot::MutexGuard<'_, State>,
        wait: Duration,
        busy: impl Fn(&State) -> bool,
    ) {
        let deadline = Instant::now() + wait;
        while busy(state) {
            if self.changed.wait_until(state, deadline).timed_out() {
                break;
            }
        }
    }
}

/// What `status()` reports besides the engine's own snapshot.
pub(crate) struct Snapshot {
    /// The engine's status (the last one when the engine ended).
    pub(crate) engine: EngineStatus,
    /// True while the engine thread runs.
    pub(crate) running: bool,
    /// Why the engine ended on its own (a capture that kept failing), if it did.
    pub(crate) failure: Option<String>,
    /// The engine's latest messages, `severity: text`, oldest first.
    pub(crate) messages: Vec<String>,
    /// How many error messages the engine produced (failed responders, failed files).
    pub(crate) errors: u64,
}

impl Live {
    /// Starts the engine on `sources` and runs it on a new thread.
    ///
    /// # Errors
    ///
    /// As [`Engine::start`]; [`EngineError::Thread`] when no thread can be started.
    pub(crate) fn start(
        sources: Sources,
        settings: Settings,
        options: EngineOptions,
    ) -> Result<Self, EngineError> {
        let mut engine = Engine::start(sources, settings, options)?;
        let shared = Arc::new(Shared {
            state: Mutex::new(State {
                stop: false,
                want_status: false,
                generation: 0,
                status: engine.status(),
                finished: false,
                failure: None,
                messages: VecDeque::new(),
                errors: 0,
            }),
            changed: Condvar::new(),
        });
        record(&shared, engine.take_messages());
        let runner = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name("ps-sensor".to_owned())
            .spawn(move || run(&runner, engine))
            .map_err(EngineError::Thread)?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A fresh snapshot (taken by the engine thread between two turns), or the final one
    /// once the engine ended.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let mut state = self.shared.state.lock();
        if !state.finished {
            let seen = state.generation;
            state.want_status = true;
            self.shared.wait_while(&mut state, STATUS_WAIT, |s| {
                s.generation == seen && !s.finished
            });
        }
        Snapshot {
            engine: state.status.clone(),
            running: !state.finished,
            failure: state.failure.clone(),
            messages: state
                .messages
                .iter()
                .map(|m| format!("{}: {}", m.severity.as_str(), m.text))
                .collect(),
            errors: state.errors,
        }
    }

    /// Adds a warning of the caller's to the engine's messages.
    pub(crate) fn warn(&self, text: String) {
        record(
            &self.shared,
            vec![Message {
                severity: Severity::Warning,
                text,
            }],
        );
    }

    /// True while the engine thread runs.
    pub(crate) fn is_running(&self) -> bool {
        !self.shared.state.lock().finished
    }

    /// Waits at most `wait` for the engine to end; true when it has.
    pub(crate) fn wait(&self, wait: Duration) -> bool {
        let mut state = self.shared.state.lock();
        self.shared.wait_while(&mut state, wait, |s| !s.finished);
        state.finished
    }

    /// Asks the engine to stop and waits for it: at most one turn, then the engine's own
    /// shutdown (bounded by `STOP_TIMEOUT` when block commands are still running).
    pub(crate) fn stop(&self) {
        self.shared.state.lock().stop = true;
        self.shared.changed.notify_all();
        // Taken out first, so that the lock is not held while joining; a second caller waits
        // for the engine's end instead.
        let thread = self.thread.lock().take();
        match thread {
            Some(thread) => {
                let _ = thread.join();
            }
            None => {
                self.wait(SECOND_STOP_WAIT);
            }
        }
    }
}

impl Drop for Live {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The engine thread.
fn run(shared: &Shared, mut engine: Engine) {
    let failure = loop {
        if shared.state.lock().stop {
            break None;
        }
        if let Err(error) = engine.turn(TURN_WAIT) {
            break Some(error.to_string());
        }
        let messages = engine.take_messages();
        if !messages.is_empty() {
            record(shared, messages);
        }
        let wanted = std::mem::take(&mut shared.state.lock().want_status);
        if wanted {
            let status = engine.status();
            let mut state = shared.state.lock();
            state.status = status;
            state.generation += 1;
            drop(state);
            shared.changed.notify_all();
        }
    };
    let (status, messages) = engine.shutdown();
    record(shared, messages);
    let mut state = shared.state.lock();
    state.status = status;
    state.failure = failure;
    state.finished = true;
    drop(state);
    shared.changed.notify_all();
}

fn record(shared: &Shared, messages: Vec<Message>) {
    let mut state = shared.state.lock();
    for message in messages {
        if message.severity == Severity::Error {
            state.errors += 1;
        }
        if state.messages.len() >= KEPT_MESSAGES {
            state.messages.pop_front();
        }
        state.messages.push_back(message);
    }
}
