use std::io::{Read, Write};
use std::net::TcpListener;
use std::os::unix::fs::PermissionsExt;

use super::*;
use crate::config::BlockMode;
use crate::respond::BlockStatus;
use crate::respond::test_support::alert;

fn write_credentials(dir: &Path, text: &str, mode: u32) -> std::path::PathBuf {
    let path = dir.join("crowdsec.yaml");
    fs::write(&path, text).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
    path
}

/// The context a blocking responder sees for `alert`.
fn pending(alert: &crate::event::Alert) -> AlertContext<'_> {
    AlertContext {
        alert,
        host_name: None,
        block: BlockStatus::Pending,
        steps: &[],
    }
}

fn private_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::set_permissions(dir.path(), fs::Permissions::from_mode(0o700)).unwrap();
    dir
}

#[test]
fn credentials_are_parsed_as_cscli_writes_them() {
    let c = Credentials::parse(
        "# written by cscli\nurl: http://127.0.0.1:8080\nlogin: web-1\npassword: \"a:b c\"\n\
         ca_cert_path: ''\n",
    )
    .unwrap();
    assert_eq!(c.url, "http://127.0.0.1:8080");
    assert_eq!(c.login, "web-1");
    assert_eq!(c.password, "a:b c");
    assert!(
        !format!("{c:?}").contains("a:b c"),
        "the password is never printed"
    );
    for (text, says) in [
        ("login: a\npassword: b\n", "no `url:`"),
        ("url: http://h\npassword: b\n", "no `login:`"),
        ("url: http://h\nlogin: a\n", "no `password:`"),
        ("url: https://h\nlogin: a\npassword: b\n", "only http://"),
        ("url: http://\nlogin: a\npassword: b\n", "no host"),
        ("url: http://h\nlogin: ''\npassword: b\n", "empty login"),
    ] {
        let err = Credentials::parse(text).unwrap_err();
        assert!(err.contains(says), "{text:?}: {err}");
    }
}

#[test]
fn the_credentials_file_must_be_private_to_root() {
    if !crate::config::running_as_root() {
        eprintln!("skipped: needs root (the file must be owned by root)");
        return;
    }
    let dir = private_dir();
    let text = "url: http://127.0.0.1:9\nlogin: a\npassword: b\n";
    let path = write_credentials(dir.path(), text, 0o600);
    assert_eq!(Credentials::load(&path).unwrap().login, "a");
    for mode in [0o640, 0o604, 0o660] {
        let path = write_credentials(dir.path(), text, mode);
        let err = Credentials::load(&path).unwrap_err().to_string();
        assert!(
            err.contains("only its owner may read it"),
            "{mode:o}: {err}"
        );
    }
    // A directory above it that others can write lets them swap the file.
    let open = tempfile::tempdir().unwrap();
    fs::set_permissions(open.path(), fs::Permissions::from_mode(0o777)).unwrap();
    let path = write_credentials(open.path(), text, 0o600);
    let err = Credentials::load(&path).unwrap_err().to_string();
    assert!(err.contains("writable by"), "{err}");
    let err = Credentials::load(dir.path()).unwrap_err().to_string();
    assert!(err.contains("not a regular file"), "{err}");
    let err = Credentials::load(&dir.path().join("absent")).unwrap_err();
    assert!(matches!(err, ResponderError::Config(_)), "{err}");
}

#[test]
fn the_alert_carries_its_ban_decision() {
    let a = alert("203.0.113.9", 79, Mode::StealthTcp, BlockMode::Block);
    let ctx = pending(&a);
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_795_558_400);
    let body = alert_body(ctx.alert, Duration::from_secs(3600), now);
    let alert = &body[0];
    assert_eq!(alert["scenario"], "portsentry/stcp");
    assert_eq!(alert["source"]["value"], "203.0.113.9");
    assert_eq!(alert["source"]["scope"], "Ip");
    assert_eq!(alert["start_at"], "2026-11-24T22:13:06.940000Z");
    assert_eq!(alert["stop_at"], "2026-11-24T22:13:20.000000Z");
    let decision = &alert["decisions"][0];
    assert_eq!(decision["type"], "ban");
    assert_eq!(decision["duration"], "3600s");
    assert_eq!(decision["value"], "203.0.113.9");
    assert_eq!(decision["origin"], ORIGIN);
    for key in [
        "scenario_hash",
        "scenario_version",
        "message",
        "events_count",
        "capacity",
        "leakspeed",
        "simulated",
        "events",
    ] {
        assert!(!alert[key].is_null(), "required field {key} missing");
    }
}

#[test]
fn log_only_alerts_are_not_pushed() {
    let c = Credentials::parse("url: http://127.0.0.1:9\nlogin: a\npassword: b\n").unwrap();
    let mut responder = CrowdsecResponder::new(c, None);
    let a = alert("203.0.113.9", 79, Mode::StealthTcp, BlockMode::LogOnly);
    let ctx = pending(&a);
    assert_eq!(responder.on_alert(&ctx).unwrap(), Outcome::Skipped);
}

/// A real socket that answers every request with `status` and counts the requests.
fn answering(status: &'static str) -> (String, std::thread::JoinHandle<usize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    listener.set_nonblocking(false).unwrap();
    let handle = std::thread::spawn(move || {
        let mut served = 0;
        listener
            .set_nonblocking(true)
            .expect("nonblocking listener");
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && served < ATTEMPTS as usize {
            match listener.accept() {
                Ok((mut stream, _)) => {
                    stream.set_nonblocking(false).unwrap();
                    stream
                        .set_read_timeout(Some(Duration::from_millis(500)))
                        .unwrap();
                    let mut buf = [0u8; 4096];
                    let _ = stream.read(&mut buf);
                    let body = "{\"message\":\"no\"}";
                    let _ = write!(
                        stream,
                        "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    served += 1;
                }
                Err(_) => std::thread::sleep(Duration::from_millis(10)),
            }
        }
        served
    });
    (url, handle)
}

#[test]
fn a_failed_push_is_a_failed_block_and_the_next_fails_fast() {
    let (url, server) = answering("503 Service Unavailable");
    let c = Credentials::parse(&format!("url: {url}\nlogin: a\npassword: b\n")).unwrap();
    let mut responder = CrowdsecResponder::new(c, Some(Duration::from_secs(60)));
    let a = alert("203.0.113.9", 79, Mode::StealthTcp, BlockMode::Block);
    let ctx = pending(&a);
    let Err(ResponderError::BlockFailed { steps }) = responder.on_alert(&ctx) else {
        panic!("a server error must fail the block");
    };
    assert_eq!(steps.len(), 1);
    let error = steps[0].error.clone().unwrap();
    assert!(error.contains("503"), "{error}");
    assert_eq!(steps[0].action, Action::Custom("crowdsec".into()));
    // Paused: the next alert fails without waiting on the server.
    let started = Instant::now();
    let Err(ResponderError::BlockFailed { steps }) = responder.on_alert(&ctx) else {
        panic!("the pause must fail the block");
    };
    assert!(
        started.elapsed() < REQUEST_TIMEOUT,
        "no request during the pause"
    );
    assert!(
        steps[0]
            .error
            .as_deref()
            .unwrap()
            .contains("not retried yet"),
        "{steps:?}"
    );
    let served = server.join().unwrap();
    assert_eq!(served, ATTEMPTS as usize, "login tried once per attempt");
}

#[test]
fn an_unreachable_local_api_fails_the_release_too() {
    // A port nothing listens on: bind, note the port, close.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let c = Credentials::parse(&format!(
        "url: http://127.0.0.1:{port}\nlogin: a\npassword: b\n"
    ))
    .unwrap();
    let mut responder = CrowdsecResponder::new(c, None);
    let release = crate::event::Release {
        address: "203.0.113.9".parse().unwrap(),
        blocked_at: Timestamp::from_secs(1),
        released_at: Timestamp::from_secs(2),
        mode: Mode::StealthTcp,
        port: 79,
    };
    let ctx = ReleaseContext {
        release: &release,
        host_name: None,
        steps: &[],
    };
    let Err(ResponderError::BlockFailed { steps }) = responder.on_release(&ctx) else {
        panic!("an unreachable server must fail the release");
    };
    assert!(steps[0].detail.contains("delete decisions for 203.0.113.9"));
    assert!(steps[0].error.is_some());
}
