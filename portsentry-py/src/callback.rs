//! Python callables and `Responder` objects as responders of the live engine.
//!
//! Each Python responder of a `Sensor` gets a [`Callback`]: a bounded queue and a thread of
//! its own that takes the interpreter lock only to make the call. The engine's responder
//! thread runs a [`CallbackResponder`] (an ordinary [`Responder`] in the engine's fan-out):
//! it queues the event and waits for the call at most the callback timeout, so its result
//! (an exception is a failure) takes the engine's one outcome path, like a block command's.
//!
//! A slow callable therefore never stalls capture (the engine's dispatcher never waits for
//! the responder thread) and delays the other responders by at most the timeout once: while
//! a call runs past the timeout, later events are queued for a reporting responder without
//! waiting (reported as failed "queued behind a running call") and delivered in order when it
//! returns; a blocking responder is not called for them (each is a failed block, so the
//! source alerts and is tried again). A full queue drops the event and counts it
//! ([`CallbackStats::dropped`]).

use std::collections::VecDeque;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};
use pyo3::prelude::*;

use portsentry_core::Event;
use portsentry_core::respond::{
    Action, AlertContext, Outcome, ReleaseContext, Responder, ResponderError, Role, Step,
};

use crate::detector::call_responder;
use crate::event::event_to_py;

/// A Python responder with its queue and thread; see the [module docs](self).
pub(crate) struct Callback {
    shared: Arc<Shared>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// What the engine's responder thread and the callback's own thread share.
struct Shared {
    name: String,
    target: Py<PyAny>,
    role: Role,
    timeout: Duration,
    capacity: usize,
    state: Mutex<State>,
    changed: Condvar,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Job>,
    next_id: u64,
    /// The job being called and since when.
    running: Option<(u64, Instant)>,
    /// The job the engine's responder thread waits for, and its result once called.
    waiting: Option<u64>,
    result: Option<Result<(), String>>,
    stopping: bool,
    stats: CallbackStats,
}

struct Job {
    id: u64,
    event: Event,
}

/// The counters of one Python responder, for `Sensor.status()`.
#[derive(Debug, Clone, Default)]
pub(crate) struct CallbackStats {
    /// Calls that returned or raised.
    pub(crate) calls: u64,
    /// Calls that raised.
    pub(crate) failures: u64,
    /// Calls that ended after the engine stopped waiting for them (timeout, or queued behind
    /// a running call); their failures are counted in `failures` too.
    pub(crate) late: u64,
    /// Events dropped because the queue was full.
    pub(crate) dropped: u64,
    /// Events still queued when the sensor stopped (never delivered).
    pub(crate) abandoned: u64,
    /// Events waiting now.
    pub(crate) queued: usize,
    /// True while a call runs.
    pub(crate) running: bool,
    /// The last exception, as `Type: message`.
    pub(crate) last_error: Option<String>,
}

impl Callback {
    /// Starts the thread for `target`. `name` names it in reports; a blocking one decides
    /// (with the configured block actions) whether a host counts as blocked.
    ///
    /// # Errors
    ///
    /// When the thread cannot be started.
    pub(crate) fn start(
        name: String,
        target: Py<PyAny>,
        blocking: bool,
        timeout: Duration,
        capacity: usize,
    ) -> std::io::Result<Self> {
        let shared = Arc::new(Shared {
            name: name.clone(),
            target,
            role: if blocking { Role::Block } else { Role::Report },
            timeout,
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            changed: Condvar::new(),
        });
        let worker = Arc::clone(&shared);
        let thread = std::thread::Builder::new()
            .name(format!("ps-py-{name}"))
            .spawn(move || work(&worker))?;
        Ok(Self {
            shared,
            thread: Mutex::new(Some(thread)),
        })
    }

    /// A responder for the engine's fan-out, feeding this callback (one per dispatcher).
    pub(crate) fn responder(&self) -> CallbackResponder {
        CallbackResponder {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The name it is reported under.
    pub(crate) fn name(&self) -> &str {
        &self.shared.name
    }

    /// Its counters now.
    pub(crate) fn stats(&self) -> CallbackStats {
        let state = self.shared.state.lock();
        let mut stats = state.stats.clone();
        stats.queued = state.queue.len();
        stats.running = state.running.is_some();
        stats
    }

    /// Stops taking events: the call running now ends on its own (a Python call cannot be
    /// interrupted), queued events are counted as abandoned, nothing is called afterwards.
    /// Does not wait for the thread.
    pub(crate) fn stop(&self) {
        self.shared.state.lock().stopping = true;
        self.shared.changed.notify_all();
        // An idle thread ends at once; a busy one after its call. Never waited for: a
        // callable may sleep for minutes.
        let mut thread = self.thread.lock();
        if thread.as_ref().is_some_and(JoinHandle::is_finished)
            && let Some(thread) = thread.take()
        {
            let _ = thread.join();
        }
    }
}

impl Drop for Callback {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The callback's thread: one call at a time, in queue order.
fn work(shared: &Shared) {
    loop {
        let job = {
            let mut state = shared.state.lock();
            loop {
                if state.stopping {
                    state.stats.abandoned += state.queue.len() as u64;
                    state.queue.clear();
                    return;
                }
                if let Some(job) = state.queue.pop_front() {
                    state.running = Some((job.id, Instant::now()));
                    break job;
                }
                shared.changed.wait(&mut state);
            }
        };
        let result = call(shared, &job.event);
        let mut state = shared.state.lock();
        state.running = None;
        state.stats.calls += 1;
        if let Err(error) = &result {
            state.stats.failures += 1;
            state.stats.last_error = Some(error.clone());
        }
        if state.waiting == Some(job.id) {
            state.result = Some(result);
        } else {
            state.stats.late += 1;
        }
        drop(state);
        shared.changed.notify_all();
    }
}

/// Calls the Python responder for one alert or release; an exception becomes its text.
fn call(shared: &Shared, event: &Event) -> Result<(), String> {
    let method = match event {
        Event::Alert(_) => "on_alert",
        Event::Released(_) => "on_release",
        _ => return Ok(()),
    };
    Python::attach(|py| {
        let outcome = event_to_py(py, event)
            .and_then(|object| call_responder(py, shared.target.bind(py), method, &object));
        outcome.map_err(|err| {
            let kind = err
                .get_type(py)
                .name()
                .map_or_else(|_| "Exception".to_owned(), |n| n.to_string());
            format!("{kind}: {}", err.value(py))
        })
    })
}

/// The engine-side face of a [`Callback`]: queues each alert and release and waits for the
/// call at most the timeout.
#[derive(Clone)]
pub(crate) struct CallbackResponder {
    shared: Arc<Shared>,
}

impl CallbackResponder {
    fn deliver(&self, event: Event) -> Result<Outcome, ResponderError> {
        let shared = &*self.shared;
        let mut state = shared.state.lock();
        if state.stopping {
            return Err(ResponderError::other("the sensor is stopping"));
        }
        if state.queue.len() >= shared.capacity {
            state.stats.dropped += 1;
            return Err(ResponderError::Dropped);
        }
        let stuck = state
            .running
            .map(|(_, since)| since.elapsed())
            .filter(|running| *running >= shared.timeout);
        // A blocking responder is not called late: the block is failed now, and the source
        // alerts (and is tried) again; a late call could block behind the table's back.
        if let (Some(running), Role::Block) = (stuck, shared.role) {
            return Err(ResponderError::other(format!(
                "not called: its previous call has been running for {:.1} s",
                running.as_secs_f64()
            )));
        }
        let id = state.next_id;
        state.next_id += 1;
        state.queue.push_back(Job { id, event });
        shared.changed.notify_all();
        if let Some(running) = stuck {
            return Err(ResponderError::other(format!(
                "queued behind a call running for {:.1} s (delivered when it returns)",
                running.as_secs_f64()
            )));
        }
        state.waiting = Some(id);
        state.result = None;
        let deadline = Instant::now() + shared.timeout;
        let result = loop {
            if let Some(result) = state.result.take() {
                break Some(result);
            }
            if state.stopping || shared.changed.wait_until(&mut state, deadline).timed_out() {
                break state.result.take();
            }
        };
        state.waiting = None;
        drop(state);
        match result {
            Some(Ok(())) => Ok(match shared.role {
                Role::Block => Outcome::Acted(vec![Step {
                    action: Action::Custom(shared.name.clone()),
                    detail: format!("{} returned", shared.name),
                    error: None,
                }]),
                _ => Outcome::Reported,
            }),
            Some(Err(error)) => Err(ResponderError::other(format!("raised {error}"))),
            None => Err(ResponderError::other(format!(
                "did not return within {:.1} s (the call goes on; its result is counted in status())",
                shared.timeout.as_secs_f64()
            ))),
        }
    }
}

impl Responder for CallbackResponder {
    fn name(&self) -> &str {
        &self.shared.name
    }

    fn role(&self) -> Role {
        self.shared.role
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        self.deliver(Event::Alert(*ctx.alert))
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        self.deliver(Event::Released(*ctx.release))
    }
}
