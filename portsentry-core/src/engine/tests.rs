//! Engine tests that need no root: connect mode on loopback with real sockets, the block
//! table restore, and the detector's reconfiguration. The full path (capture, nmap, nft) is
//! covered by the CLI's end-to-end tests in network namespaces.

use super::*;
use crate::capture::now;
use crate::probe::{Probe, Protocol, ScanKind, Timestamp};
use crate::respond::dispatch::Submitted;
use crate::respond::{AlertContext, Outcome, ReleaseContext};
use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};

/// A TCP port free right now on every address.
fn free_port() -> u16 {
    TcpListener::bind("[::]:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn scratch(tag: &str) -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix(&format!("ps-engine-{tag}-"))
        .tempdir()
        .unwrap()
}

fn settings(dir: &Path, text: &str) -> Settings {
    let mut config = Config::parse_str(text, "test.conf").unwrap().config;
    config.resolve_state_paths(dir);
    Settings {
        config,
        ignore: None,
        config_file: None,
    }
}

/// A log factory whose lines land in a shared vector.
fn collecting_log() -> (LogFactory, Arc<Mutex<Vec<String>>>) {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&lines);
    let factory: LogFactory = Box::new(move || {
        let on_alert = Arc::clone(&sink);
        let on_release = Arc::clone(&sink);
        struct Collect {
            alert: Arc<Mutex<Vec<String>>>,
            release: Arc<Mutex<Vec<String>>>,
        }
        impl Responder for Collect {
            fn name(&self) -> &str {
                "collect"
            }
            fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
                self.alert
                    .lock()
                    .unwrap()
                    .push(format!("alert {}", ctx.alert.probe.source));
                Ok(Outcome::Reported)
            }
            fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
                self.release
                    .lock()
                    .unwrap()
                    .push(format!("release {}", ctx.release.address));
                Ok(Outcome::Reported)
            }
            fn on_notice(&mut self, notice: &respond::Notice<'_>) -> Result<(), ResponderError> {
                if let respond::Notice::Ignored { probe, reason, .. } = notice {
                    self.alert.lock().unwrap().push(format!(
                        "ignored {} {}",
                        probe.source,
                        reason.as_str()
                    ));
                }
                Ok(())
            }
        }
        Box::new(Collect {
            alert: on_alert,
            release: on_release,
        })
    });
    (factory, lines)
}

#[test]
fn connect_mode_on_loopback_is_ignored_and_gets_no_banner() {
    let dir = scratch("connect");
    let port = free_port();
    let s = settings(
        dir.path(),
        &format!(
            "TCP_PORTS=\"{port}\"\nPORT_BANNER=\"go away\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"history\"\n"
        ),
    );
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    assert_eq!(
        sources
            .bound_ports(Protocol::Tcp)
            .iter()
            .collect::<Vec<_>>(),
        [port]
    );
    let (log, lines) = collecting_log();
    let options = EngineOptions {
        log: Some(log),
        ..EngineOptions::default()
    };
    let mut engine = Engine::start(sources, s, options).unwrap();
    let messages = engine.take_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.text.contains("listen mode (connect) (tcp)")
                && m.text.contains(&port.to_string())),
        "{messages:?}"
    );
    let client = std::thread::spawn(move || {
        let mut stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut got = Vec::new();
        let _ = stream.read_to_end(&mut got);
        got
    });
    let deadline = Instant::now() + Duration::from_secs(5);
    while lines.lock().unwrap().is_empty() && Instant::now() < deadline {
        engine.turn(Duration::from_millis(50)).unwrap();
    }
    let got = client.join().unwrap();
    assert!(
        got.is_empty(),
        "a loopback (ignored) client got a banner: {got:?}"
    );
    assert_eq!(
        *lines.lock().unwrap(),
        ["ignored 127.0.0.1 loopback"],
        "loopback is never counted"
    );
    let status = engine.status();
    assert_eq!(status.detector.ignored, 1);
    assert_eq!(status.detector.alerts, 0);
    assert!(status.commands_enabled);
    engine.shutdown();
    // The block table is written at shutdown, empty.
    let text = std::fs::read_to_string(dir.path().join("blocked")).unwrap();
    assert!(text.starts_with("# portsentry block table"), "{text}");
    assert_eq!(text.lines().count(), 1);
}

#[test]
fn restore_unblock_and_expiry_rewrite_the_block_table() {
    let dir = scratch("restore");
    let port = free_port();
    let blocked = dir.path().join("blocked");
    let at = now().as_secs();
    std::fs::write(
        &blocked,
        format!(
            "203.0.113.7 {at} never stcp 22\n203.0.113.8 {at} {} stcp 23\n198.51.100.9 {} {} sudp 7\n",
            at + 3600,
            at - 100,
            at - 50
        ),
    )
    .unwrap();
    let s = settings(
        dir.path(),
        &format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\n"),
    );
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let (log, lines) = collecting_log();
    let mut engine = Engine::start(
        sources,
        s,
        EngineOptions {
            log: Some(log),
            ..EngineOptions::default()
        },
    )
    .unwrap();
    let messages = engine.take_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.text.contains("restored 3 block(s)")),
        "{messages:?}"
    );
    // The expired one was released at start: the journal says so until its release actions
    // reported, then it is gone from the file.
    let text = std::fs::read_to_string(&blocked).unwrap();
    assert!(text.contains("sudp 7 releasing"), "{text}");
    let deadline = Instant::now() + Duration::from_secs(30);
    while std::fs::read_to_string(&blocked)
        .unwrap()
        .contains("198.51.100.9")
        && Instant::now() < deadline
    {
        engine.turn(Duration::from_millis(20)).unwrap();
    }
    let text = std::fs::read_to_string(&blocked).unwrap();
    assert!(!text.contains("198.51.100.9"), "{text}");
    assert!(
        text.contains("203.0.113.7") && text.contains("203.0.113.8"),
        "{text}"
    );
    assert!(engine.unblock("203.0.113.7".parse().unwrap()).is_some());
    assert!(engine.unblock("203.0.113.7".parse().unwrap()).is_none());
    let text = std::fs::read_to_string(&blocked).unwrap();
    assert!(
        text.contains("203.0.113.7 ") && text.contains("releasing"),
        "{text}"
    );
    assert_eq!(engine.status().blocks.len(), 1);
    engine.shutdown();
    let text = std::fs::read_to_string(&blocked).unwrap();
    assert!(!text.contains("203.0.113.7"), "{text}");
    let released = lines.lock().unwrap().clone();
    assert!(
        released.contains(&"release 198.51.100.9".to_owned()),
        "{released:?}"
    );
    assert!(
        released.contains(&"release 203.0.113.7".to_owned()),
        "{released:?}"
    );
}

#[test]
fn an_unreadable_block_table_is_moved_aside_not_lost() {
    let dir = scratch("aside");
    let port = free_port();
    std::fs::write(dir.path().join("blocked"), "this is not a block line\n").unwrap();
    let s = settings(
        dir.path(),
        &format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\n"),
    );
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let mut engine = Engine::start(sources, s, EngineOptions::default()).unwrap();
    let messages = engine.take_messages();
    let m = messages
        .iter()
        .find(|m| m.severity == Severity::Error)
        .expect("an error message");
    assert!(
        m.text.contains("blocked:1: unreadable block table"),
        "{}",
        m.text
    );
    engine.shutdown();
    let aside: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.starts_with("blocked.unreadable-"))
        .collect();
    assert_eq!(aside.len(), 1);
    let kept = std::fs::read_to_string(dir.path().join(&aside[0])).unwrap();
    assert_eq!(kept, "this is not a block line\n");
}

#[test]
fn reload_rebinds_connect_ports_and_keeps_blocks() {
    let dir = scratch("reload");
    let (first, second) = (free_port(), free_port());
    let text =
        |port: u16| format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\n");
    let s = settings(dir.path(), &text(first));
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let mut engine = Engine::start(sources, s, EngineOptions::default()).unwrap();
    engine.detector.restore_blocks([BlockRecord {
        address: "203.0.113.5".parse().unwrap(),
        blocked_at: now(),
        expires_at: None,
        mode: Mode::Tcp,
        port: first,
    }]);
    engine.reload(settings(dir.path(), &text(second))).unwrap();
    assert_eq!(
        engine
            .sources
            .bound_ports(Protocol::Tcp)
            .iter()
            .collect::<Vec<_>>(),
        [second]
    );
    // The old port is closed, the new one accepts.
    assert!(TcpStream::connect(("127.0.0.1", first)).is_err());
    assert!(TcpStream::connect(("127.0.0.1", second)).is_ok());
    assert!(engine.detector().is_blocked("203.0.113.5".parse().unwrap()));
    assert!(
        std::fs::read_to_string(dir.path().join("blocked"))
            .unwrap()
            .contains("203.0.113.5")
    );
    engine.shutdown();
}

#[test]
fn reconfigure_keeps_tracker_progress_unless_tracker_settings_change() {
    let text = "TCP_PORTS=\"1,2,3,4\"\nSCAN_TRIGGER=\"3\"\n";
    let config = Config::parse_str(text, "t").unwrap().config;
    let mut det = Detector::builder(&config)
        .modes([Mode::StealthTcp])
        .build()
        .unwrap();
    let probe = |port| Probe {
        at: Timestamp::from_secs(100),
        source: "203.0.113.9".parse().unwrap(),
        destination: "203.0.113.2".parse().unwrap(),
        protocol: Protocol::Tcp,
        source_port: 40000,
        destination_port: port,
        kind: ScanKind::Syn,
        ip_options: false,
    };
    assert!(matches!(det.observe(&probe(1)), Event::BelowTrigger { .. }));
    assert!(matches!(det.observe(&probe(2)), Event::BelowTrigger { .. }));
    // A new port list, same trigger: progress kept, port 9 is now monitored.
    let wider = Config::parse_str("TCP_PORTS=\"1,2,3,9\"\nSCAN_TRIGGER=\"3\"\n", "t")
        .unwrap()
        .config;
    assert!(!det.reconfigure(&wider).unwrap());
    assert!(matches!(det.observe(&probe(9)), Event::Alert(_)));
    // A new trigger: the tracker starts afresh.
    let other = Config::parse_str("TCP_PORTS=\"1,2,3,9\"\nSCAN_TRIGGER=\"2\"\n", "t")
        .unwrap()
        .config;
    assert!(det.reconfigure(&other).unwrap());
    let mut p = probe(1);
    p.source = "203.0.113.10".parse().unwrap();
    assert!(matches!(
        det.observe(&p),
        Event::BelowTrigger { trigger: 2, .. }
    ));
}

/// A responder that holds the responder thread in its first release until told to go on.
struct Gate {
    /// Taken by the first release.
    wait: Option<(std::sync::mpsc::Sender<()>, std::sync::mpsc::Receiver<()>)>,
    released: Arc<Mutex<Vec<IpAddr>>>,
    /// Set when nobody told the gate to go on within 5 s.
    timed_out: Arc<std::sync::atomic::AtomicBool>,
}

impl Responder for Gate {
    fn name(&self) -> &str {
        "gate"
    }
    fn on_alert(&mut self, _: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        Ok(Outcome::Reported)
    }
    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        if let Some((started, go)) = self.wait.take() {
            let _ = started.send(());
            if go.recv_timeout(Duration::from_secs(5)).is_err() {
                self.timed_out
                    .store(true, std::sync::atomic::Ordering::SeqCst);
            }
        }
        self.released.lock().unwrap().push(ctx.release.address);
        Ok(Outcome::Reported)
    }
}

#[test]
fn a_release_that_finds_the_queue_full_keeps_its_block_and_is_retried() {
    let dir = scratch("release-full");
    let port = free_port();
    let s = settings(
        dir.path(),
        &format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\n"),
    );
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let mut engine = Engine::start(sources, s, EngineOptions::default()).unwrap();
    // A responder thread that is busy, with a queue of one job that is already taken.
    let (started_tx, started) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    let released = Arc::new(Mutex::new(Vec::new()));
    let gate = Gate {
        wait: Some((started_tx, go_rx)),
        released: Arc::clone(&released),
        timed_out: Arc::default(),
    };
    let config = DispatchConfig {
        action_capacity: 1,
        ..DispatchConfig::default()
    };
    let busy = Dispatcher::spawn(Fanout::new().with(gate), config).unwrap();
    let at = now();
    let filler = |last: u8| Release {
        address: IpAddr::from([198, 51, 100, last]),
        blocked_at: at,
        released_at: at,
        mode: Mode::Tcp,
        port,
    };
    assert_eq!(busy.submit_release(filler(1)), Submitted::Queued);
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    assert_eq!(busy.submit_release(filler(2)), Submitted::Queued);
    if let Some(old) = engine.dispatcher.replace(busy) {
        old.shutdown();
    }

    let scanner: IpAddr = "203.0.113.44".parse().unwrap();
    engine.detector.restore_blocks([BlockRecord {
        address: scanner,
        blocked_at: Timestamp::from_secs(at.as_secs() - 100),
        expires_at: Some(Timestamp::from_secs(at.as_secs() - 1)),
        mode: Mode::Tcp,
        port,
    }]);
    engine.take_messages();
    engine.release_due(at);
    // The release could not be queued: the block is kept, due again shortly, and said so.
    assert!(engine.detector().is_blocked(scanner));
    assert!(engine.detector().next_expiry().is_some_and(|t| t > at));
    let messages = engine.take_messages();
    assert!(
        messages
            .iter()
            .any(|m| m.severity == Severity::Error && m.text.contains("203.0.113.44")),
        "{messages:?}"
    );
    assert!(
        std::fs::read_to_string(dir.path().join("blocked"))
            .unwrap()
            .contains("203.0.113.44")
    );
    // An administrator's unblock that finds the queue full is kept too.
    engine.detector.restore_blocks([BlockRecord {
        address: "203.0.113.45".parse().unwrap(),
        blocked_at: at,
        expires_at: None,
        mode: Mode::Tcp,
        port,
    }]);
    assert!(engine.unblock("203.0.113.45".parse().unwrap()).is_some());
    assert!(
        engine
            .detector()
            .is_blocked("203.0.113.45".parse().unwrap())
    );

    // Once the responders catch up, the retries hand both releases over (the queue holds
    // one job, so one may have to wait for the next retry).
    go.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut clock = now();
    while engine.detector().blocks().count() > 0 && Instant::now() < deadline {
        clock = clock.saturating_add(RELEASE_RETRY);
        engine.release_due(clock);
        std::thread::sleep(Duration::from_millis(10));
    }
    assert!(!engine.detector().is_blocked(scanner));
    assert!(
        !engine
            .detector()
            .is_blocked("203.0.113.45".parse().unwrap())
    );
    engine.shutdown();
    let released = released.lock().unwrap().clone();
    assert!(released.contains(&scanner), "{released:?}");
    assert!(
        released.contains(&"203.0.113.45".parse().unwrap()),
        "{released:?}"
    );
}

#[test]
fn reload_does_not_wait_for_busy_responders_and_keeps_them_in_order() {
    let dir = scratch("reload-busy");
    let port = free_port();
    let text = format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\n");
    let s = settings(dir.path(), &text);
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let (log, lines) = collecting_log();
    let options = EngineOptions {
        log: Some(log),
        ..EngineOptions::default()
    };
    let mut engine = Engine::start(sources, s, options).unwrap();
    // The responder thread is busy with a release (a slow command, say).
    let (started_tx, started) = std::sync::mpsc::channel();
    let (go, go_rx) = std::sync::mpsc::channel();
    let released = Arc::new(Mutex::new(Vec::new()));
    let timed_out = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let gate = Gate {
        wait: Some((started_tx, go_rx)),
        released: Arc::clone(&released),
        timed_out: Arc::clone(&timed_out),
    };
    let busy = Dispatcher::spawn(Fanout::new().with(gate), DispatchConfig::default()).unwrap();
    let at = now();
    let slow = Release {
        address: "198.51.100.1".parse().unwrap(),
        blocked_at: at,
        released_at: at,
        mode: Mode::Tcp,
        port,
    };
    assert_eq!(busy.submit_release(slow), Submitted::Queued);
    started.recv_timeout(Duration::from_secs(10)).unwrap();
    if let Some(old) = engine.dispatcher.replace(busy) {
        old.shutdown();
    }

    // The reload returns while the old responder is still busy.
    engine.reload(settings(dir.path(), &text)).unwrap();
    assert!(!timed_out.load(std::sync::atomic::Ordering::SeqCst));
    assert_eq!(engine.retiring.len(), 1);
    // A release after the reload goes to the new responders, which start once the old ones
    // are done.
    let scanner: IpAddr = "203.0.113.46".parse().unwrap();
    engine.detector.restore_blocks([BlockRecord {
        address: scanner,
        blocked_at: Timestamp::from_secs(at.as_secs() - 100),
        expires_at: Some(Timestamp::from_secs(at.as_secs() - 1)),
        mode: Mode::Tcp,
        port,
    }]);
    engine.release_due(at);
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        lines.lock().unwrap().is_empty(),
        "the new responders ran too early"
    );

    go.send(()).unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while (!engine.retiring.is_empty() || lines.lock().unwrap().is_empty())
        && Instant::now() < deadline
    {
        engine.turn(Duration::from_millis(20)).unwrap();
    }
    assert!(
        engine.retiring.is_empty(),
        "the old dispatcher was not retired"
    );
    assert_eq!(*released.lock().unwrap(), [slow.address]);
    assert_eq!(*lines.lock().unwrap(), [format!("release {scanner}")]);
    assert!(!timed_out.load(std::sync::atomic::Ordering::SeqCst));
    engine.shutdown();
}

#[test]
fn a_restored_block_that_cannot_be_re_added_to_nftables_is_reported() {
    let dir = scratch("nft-restore");
    let port = free_port();
    let at = now().as_secs();
    std::fs::write(
        dir.path().join("blocked"),
        format!("203.0.113.47 {at} never stcp 22\n"),
    )
    .unwrap();
    // A table that does not exist: `nft add element` fails (as it does without root or nft).
    let table = format!("ps_missing_{}", std::process::id());
    let s = settings(
        dir.path(),
        &format!(
            "TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\nHISTORY_FILE=\"\"\nNFT_SET=\"inet {table} blocked\"\n"
        ),
    );
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let mut engine = Engine::start(sources, s, EngineOptions::default()).unwrap();
    let mut messages = engine.take_messages();
    let deadline = Instant::now() + Duration::from_secs(30);
    let reported = |messages: &[Message]| {
        messages.iter().any(|m| {
            m.severity == Severity::Error
                && m.text
                    .contains("re-applying the block of 203.0.113.47 failed: nft: ")
        })
    };
    while !reported(&messages) && Instant::now() < deadline {
        engine.turn(Duration::from_millis(20)).unwrap();
        messages.extend(engine.take_messages());
    }
    assert!(reported(&messages), "{messages:?}");
    // The block itself stays recorded (it was made before the restart).
    assert!(
        engine
            .detector()
            .is_blocked("203.0.113.47".parse().unwrap())
    );
    engine.shutdown();
}

/// An embedder's extra responders are made at start and again at each reload, and run on
/// the responder thread with the configured ones (here: the notice of an ignored loopback
/// connection reaches them).
#[test]
fn extra_responders_are_made_at_start_and_reload_and_hear_events() {
    struct Notices(Arc<Mutex<Vec<String>>>);
    impl Responder for Notices {
        fn name(&self) -> &str {
            "extra"
        }
        fn on_alert(&mut self, _ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
            Ok(Outcome::Reported)
        }
        fn on_notice(&mut self, notice: &respond::Notice<'_>) -> Result<(), ResponderError> {
            if let respond::Notice::Ignored { probe, .. } = notice {
                self.0.lock().unwrap().push(probe.source.to_string());
            }
            Ok(())
        }
    }
    let dir = scratch("extra");
    let port = free_port();
    let text = format!("TCP_PORTS=\"{port}\"\nBLOCKED_FILE=\"blocked\"\n");
    let s = settings(dir.path(), &text);
    let sources = Sources::open(&[Mode::Tcp], &s.config, None).unwrap();
    let made = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = Arc::new(Mutex::new(Vec::new()));
    let (counter, sink) = (Arc::clone(&made), Arc::clone(&seen));
    let options = EngineOptions {
        extra: Some(Box::new(move || {
            counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            vec![Box::new(Notices(Arc::clone(&sink))) as Box<dyn Responder>]
        })),
        ..EngineOptions::default()
    };
    let mut engine = Engine::start(sources, s, options).unwrap();
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 1);
    engine.reload(settings(dir.path(), &text)).unwrap();
    assert_eq!(made.load(std::sync::atomic::Ordering::SeqCst), 2);
    let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while seen.lock().unwrap().is_empty() && Instant::now() < deadline {
        engine.turn(Duration::from_millis(50)).unwrap();
    }
    drop(stream);
    assert_eq!(*seen.lock().unwrap(), ["127.0.0.1"]);
    engine.shutdown();
}
