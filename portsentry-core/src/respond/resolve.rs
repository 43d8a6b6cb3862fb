//! `RESOLVE_HOST`: reverse DNS for display, off the hot path, never holding the responder.
//!
//! The name is only ever shown (the `name/ip` host field of log and history lines); commands
//! always get the numeric address. The dispatcher thread resolves before running reporting
//! responders, never the capture thread.
//!
//! Each lookup (`getnameinfo` with `NI_NAMEREQD`, through the `dns-lookup` crate) runs on a
//! helper thread. The responder thread waits for it at most the resolver's wait
//! ([`DEFAULT_TIMEOUT`], 100 ms: enough for `/etc/hosts` and a nearby DNS server); a lookup
//! that is not back in time is skipped for display (the address is shown numerically) and
//! its answer, whenever it comes, is kept for the next line about that address. A lookup
//! already running for an address is never started again, and at most [`MAX_IN_FLIGHT`]
//! helpers exist at a time: beyond that, addresses are shown numerically at once, so a
//! scanner with a slow PTR zone can neither hold the responder thread nor pile up threads.
//!
//! PTR records are chosen by whoever owns the address, so a name is used only if it looks
//! like a host name (letters, digits, `-`, `_`, `.`, at most 253 bytes); anything else (a
//! line break meant to forge a log line, spaces, slashes) is shown numerically.
//! Answers (also failures) are cached, up to [`CACHE_SIZE`] addresses.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::Duration;

/// The default longest wait of the responder thread for one name: 100 milliseconds.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_millis(100);
/// The most lookups running at once.
pub const MAX_IN_FLIGHT: usize = 4;
/// The most answers remembered (the cache is emptied when full).
pub const CACHE_SIZE: usize = 4096;

type Lookup = dyn Fn(IpAddr) -> Option<String> + Send + Sync;
/// Answers the helpers delivered, not yet moved into the cache.
type Arrived = Arc<Mutex<Vec<(IpAddr, Option<String>)>>>;

/// Resolves addresses to names for display; see the [module docs](self).
pub struct Resolver {
    timeout: Duration,
    lookup: Arc<Lookup>,
    in_flight: Arc<AtomicUsize>,
    arrived: Arrived,
    pending: HashSet<IpAddr>,
    cache: HashMap<IpAddr, Option<String>>,
}

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Resolver")
            .field("timeout", &self.timeout)
            .field("pending", &self.pending.len())
            .field("cached", &self.cache.len())
            .finish_non_exhaustive()
    }
}

fn system_lookup(address: IpAddr) -> Option<String> {
    dns_lookup::lookup_addr(&address).ok()
}

/// True when `name` looks like a DNS host name and is safe to print.
fn plausible_host_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 253
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

impl Resolver {
    /// A resolver using the system's reverse lookup; the responder waits at most `timeout`
    /// for one name.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::respond::resolve::{Resolver, DEFAULT_TIMEOUT};
    /// let mut r = Resolver::new(DEFAULT_TIMEOUT);
    /// // 127.0.0.1 has a name in /etc/hosts on most systems ("localhost").
    /// let _name: Option<String> = r.resolve("127.0.0.1".parse().unwrap());
    /// ```
    pub fn new(timeout: Duration) -> Self {
        Self::with_lookup(timeout, system_lookup)
    }

    /// A resolver using `lookup` (for embedders with their own DNS client, and tests).
    pub fn with_lookup<F>(timeout: Duration, lookup: F) -> Self
    where
        F: Fn(IpAddr) -> Option<String> + Send + Sync + 'static,
    {
        Self {
            timeout,
            lookup: Arc::new(lookup),
            in_flight: Arc::new(AtomicUsize::new(0)),
            arrived: Arc::default(),
            pending: HashSet::new(),
            cache: HashMap::new(),
        }
    }

    /// The name of `address`, or `None` (show it numerically) when there is none, it does
    /// not look like a host name, or the lookup is not back within the wait. Never blocks
    /// longer than the wait given at construction.
    pub fn resolve(&mut self, address: IpAddr) -> Option<String> {
        self.take_arrived();
        if let Some(known) = self.cache.get(&address) {
            return known.clone();
        }
        if self.pending.contains(&address) {
            // Already being looked up: do not wait for it twice.
            return None;
        }
        let signal = self.start_lookup(address)?;
        // Ok: the helper delivered; Err: not in time (the answer is kept when it comes).
        let _ = signal.recv_timeout(self.timeout);
        self.take_arrived();
        self.cache.get(&address).cloned().flatten()
    }

    /// Moves delivered answers into the cache.
    fn take_arrived(&mut self) {
        let arrived =
            std::mem::take(&mut *self.arrived.lock().unwrap_or_else(PoisonError::into_inner));
        for (address, name) in arrived {
            self.pending.remove(&address);
            let numeric = super::address_text(address);
            let name = name.filter(|n| plausible_host_name(n) && *n != numeric);
            if self.cache.len() >= CACHE_SIZE {
                self.cache.clear();
            }
            self.cache.insert(address, name);
        }
    }

    /// Starts a helper for `address`; `None` when [`MAX_IN_FLIGHT`] are running or no
    /// thread can be made. The receiver hears once the answer has arrived.
    fn start_lookup(&mut self, address: IpAddr) -> Option<mpsc::Receiver<()>> {
        if self.in_flight.fetch_add(1, Ordering::AcqRel) >= MAX_IN_FLIGHT {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        let (tx, rx) = mpsc::channel();
        let lookup = Arc::clone(&self.lookup);
        let in_flight = Arc::clone(&self.in_flight);
        let arrived = Arc::clone(&self.arrived);
        let spawned = thread::Builder::new()
            .name("portsentry-resolve".to_owned())
            .spawn(move || {
                let name = lookup(address);
                arrived
                    .lock()
                    .unwrap_or_else(PoisonError::into_inner)
                    .push((address, name));
                in_flight.fetch_sub(1, Ordering::AcqRel);
                let _ = tx.send(());
            });
        if spawned.is_err() {
            self.in_flight.fetch_sub(1, Ordering::AcqRel);
            return None;
        }
        self.pending.insert(address);
        Some(rx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Instant;

    #[test]
    fn loopback_resolves_with_the_system_resolver() {
        let mut r = Resolver::new(DEFAULT_TIMEOUT);
        let name = r.resolve("127.0.0.1".parse().unwrap());
        // /etc/hosts maps 127.0.0.1 on any sane system; only loopback is queried.
        let name = name.expect("127.0.0.1 should have a name in /etc/hosts");
        assert!(plausible_host_name(&name), "{name}");
    }

    #[test]
    fn slow_lookup_times_out_to_numeric() {
        let (release_tx, release_rx) = mpsc::channel::<()>();
        let release_rx = std::sync::Mutex::new(release_rx);
        let mut r = Resolver::with_lookup(Duration::from_millis(50), move |_| {
            // Blocks until the test lets it go (or 10 s pass).
            let _ = release_rx
                .lock()
                .unwrap()
                .recv_timeout(Duration::from_secs(10));
            Some("late.example".to_owned())
        });
        let address = "203.0.113.1".parse().unwrap();
        let start = Instant::now();
        assert_eq!(r.resolve(address), None);
        assert!(start.elapsed() < Duration::from_secs(5));
        // Still running: a second line about the address does not wait again.
        assert_eq!(r.resolve(address), None);
        assert_eq!(r.in_flight.load(Ordering::Acquire), 1, "no second lookup");
        // The late answer is kept for the next line.
        release_tx.send(()).unwrap();
        let mut late = None;
        for _ in 0..200 {
            late = r.resolve(address);
            if late.is_some() {
                break;
            }
            thread::sleep(Duration::from_millis(25));
        }
        assert_eq!(late.as_deref(), Some("late.example"));
    }

    /// The issue's reproduction: with a slow reverse zone the responder thread waited 2 s per
    /// lookup. With the default wait, 20 lines about 20 slow addresses cost at most the wait
    /// each while helpers are free, and nothing once all of them are busy.
    #[test]
    fn slow_zones_never_hold_the_responder() {
        let mut r = Resolver::with_lookup(DEFAULT_TIMEOUT, |_| {
            thread::sleep(Duration::from_secs(2));
            Some("slow.example".to_owned())
        });
        let start = Instant::now();
        for i in 0..20u8 {
            assert_eq!(r.resolve(IpAddr::from([198, 51, 100, i])), None);
        }
        // 4 waits of 100 ms, then numeric at once: less than one of the old 2 s waits (the
        // old code spent 4 x 2 s here).
        let elapsed = start.elapsed();
        assert!(elapsed < Duration::from_millis(1900), "{elapsed:?}");
        assert!(r.in_flight.load(Ordering::Acquire) <= MAX_IN_FLIGHT);
    }

    #[test]
    fn overload_answers_numeric_at_once() {
        let mut r = Resolver::with_lookup(Duration::from_millis(20), |_| {
            thread::sleep(Duration::from_millis(300));
            None
        });
        for i in 0..MAX_IN_FLIGHT {
            assert_eq!(
                r.resolve(IpAddr::from([203, 0, 113, u8::try_from(i).unwrap()])),
                None
            );
        }
        assert_eq!(r.in_flight.load(Ordering::Acquire), MAX_IN_FLIGHT);
        // All helpers are busy: no new thread, numeric.
        assert_eq!(r.resolve("203.0.113.200".parse().unwrap()), None);
        assert_eq!(r.in_flight.load(Ordering::Acquire), MAX_IN_FLIGHT);
    }

    #[test]
    fn hostile_names_are_refused_and_answers_cached() {
        let calls = Arc::new(AtomicUsize::new(0));
        let c = Arc::clone(&calls);
        let mut r = Resolver::with_lookup(DEFAULT_TIMEOUT, move |ip| {
            c.fetch_add(1, Ordering::SeqCst);
            match ip {
                IpAddr::V4(v4) if v4.octets()[3] == 1 => Some("ok-host.example".to_owned()),
                IpAddr::V4(v4) if v4.octets()[3] == 2 => Some("x\nattackalert: forged".to_owned()),
                _ => Some("203.0.113.3".to_owned()),
            }
        });
        let a1 = "203.0.113.1".parse().unwrap();
        assert_eq!(r.resolve(a1).as_deref(), Some("ok-host.example"));
        assert_eq!(r.resolve(a1).as_deref(), Some("ok-host.example"));
        assert_eq!(calls.load(Ordering::SeqCst), 1);
        assert_eq!(r.resolve("203.0.113.2".parse().unwrap()), None);
        assert_eq!(r.resolve("203.0.113.3".parse().unwrap()), None);
    }
}
