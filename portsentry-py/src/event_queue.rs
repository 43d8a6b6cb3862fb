//! The events a `Sensor` hands to `Sensor.events()`: a bounded queue filled by a reporting
//! responder in the engine's fan-out ([`EventSink`]), so the iterator sees exactly the alerts
//! and releases the responders see. A full queue drops the newest event and counts it.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex};

use portsentry_core::Event;
use portsentry_core::respond::{AlertContext, Outcome, ReleaseContext, Responder, ResponderError};

/// A bounded queue of events with a blocking, time-limited `pop`.
pub(crate) struct EventQueue {
    state: Mutex<QueueState>,
    changed: Condvar,
    capacity: usize,
}

struct QueueState {
    events: VecDeque<Event>,
    dropped: u64,
    closed: bool,
}

/// What [`EventQueue::pop`] found.
pub(crate) enum Popped {
    /// The oldest event.
    Event(Event),
    /// Nothing arrived in time.
    Empty,
    /// The sensor stopped and every event was taken.
    Closed,
}

impl EventQueue {
    /// An empty queue holding at most `capacity` events.
    pub(crate) fn new(capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            state: Mutex::new(QueueState {
                events: VecDeque::new(),
                dropped: 0,
                closed: false,
            }),
            changed: Condvar::new(),
            capacity: capacity.max(1),
        })
    }

    fn push(&self, event: Event) {
        let mut state = self.state.lock();
        if state.events.len() >= self.capacity {
            state.dropped += 1;
            return;
        }
        state.events.push_back(event);
        drop(state);
        self.changed.notify_one();
    }

    /// The oldest event, waiting at most `wait` for one.
    pub(crate) fn pop(&self, wait: Duration) -> Popped {
        let deadline = Instant::now() + wait;
        let mut state = self.state.lock();
        loop {
            if let Some(event) = state.events.pop_front() {
                return Popped::Event(event);
            }
            if state.closed {
                return Popped::Closed;
            }
            if self.changed.wait_until(&mut state, deadline).timed_out() {
                return state
                    .events
                    .pop_front()
                    .map_or(Popped::Empty, Popped::Event);
            }
        }
    }

    /// No more events will come (the sensor stopped); the queued ones can still be taken.
    pub(crate) fn close(&self) {
        self.state.lock().closed = true;
        self.changed.notify_all();
    }

    /// Events dropped because the queue was full.
    pub(crate) fn dropped(&self) -> u64 {
        self.state.lock().dropped
    }
}

/// The reporting responder that fills an [`EventQueue`].
pub(crate) struct EventSink(pub(crate) Arc<EventQueue>);

impl Responder for EventSink {
    fn name(&self) -> &str {
        "events"
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        self.0.push(Event::Alert(*ctx.alert));
        Ok(Outcome::Reported)
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        self.0.push(Event::Released(*ctx.release));
        Ok(Outcome::Reported)
    }
}
