//! `CROWDSEC_CREDENTIALS`: push every block to a CrowdSec Local API as a ban decision.
//!
//! CrowdSec's Local API holds decisions for a whole fleet, and every host's
//! `crowdsec-firewall-bouncer` enforces them; so a scanner one host blocks is blocked on all.
//! This responder is a machine ("watcher") of that API:
//!
//! * it logs in with the credentials file (`POST /v1/watchers/login`, as `cscli machines
//!   add NAME --password P -f FILE` writes it: `url`, `login`, `password`), and logs in again
//!   when the token is refused or old;
//! * for each `BLOCK_x="1"` alert it sends one alert carrying its own ban decision
//!   (`POST /v1/alerts`): scope `Ip`, scenario `portsentry/MODE`, origin `portsentry`,
//!   duration `BLOCK_TIMEOUT` (ten years when blocks never expire);
//! * for each release (expiry, `portsentry unblock`) it deletes the address's decisions
//!   (`DELETE /v1/decisions?ip=ADDRESS`);
//! * at reconciliation it asks whether its ban is still there (`GET /v1/alerts?ip=ADDRESS&
//!   has_active_decision=true`) and pushes it again, for the time the block has left, only
//!   when it is not (so the bouncers never see a block flap).
//!
//! It is a blocking responder: a push that fails after its retries is a failed block, reported
//! and counted like any other. Each request has a short timeout and is retried a bounded
//! number of times; after a failure the responder fails fast for a pause instead of waiting
//! on a dead server for every alert, so the response queue in front of it (bounded, see
//! [`dispatch`](super::dispatch)) keeps moving.
//!
//! The credentials file holds a password: it must be a regular file that only root can read
//! or write (mode 0600 or stricter, owned by root, in directories only root can write),
//! checked like the configuration when the responder is built. Only plain `http://` URLs
//! are accepted (a Local API on the host or a private network); no proxy is used.

use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use super::{
    Action, AlertContext, Outcome, ReapplyContext, ReleaseContext, Responder, ResponderError, Role,
    Step, address_text, timefmt,
};
use crate::config::{BlockMode, Config};
use crate::event::Alert;
use crate::mode::Mode;
use crate::permissions;
use crate::probe::Timestamp;

/// The `origin` of the decisions this responder makes.
pub const ORIGIN: &str = "portsentry";
/// How long one request may take.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);
/// How many times a request is tried before the push counts as failed.
pub const ATTEMPTS: u32 = 3;
/// How long pushes fail at once after a failed one (instead of waiting on a dead server).
pub const PAUSE_AFTER_FAILURE: Duration = Duration::from_secs(10);
/// A decision's duration when blocks never expire (`BLOCK_TIMEOUT="0"`): ten years.
const FOREVER: Duration = Duration::from_secs(10 * 365 * 24 * 3600);
/// A ban missing at reconciliation is not pushed again when the block ends sooner than
/// this: the Local API may simply have expired it a moment before portsentry releases it.
const MIN_REMAINING_TO_PUSH: Duration = Duration::from_secs(10);
/// Tokens are renewed before this age (the Local API's last an hour).
const TOKEN_LIFETIME: Duration = Duration::from_secs(30 * 60);
/// The longest credentials file read.
const MAX_CREDENTIALS_BYTES: u64 = 64 * 1024;

/// The machine credentials of a Local API.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// The Local API's base URL, e.g. `http://127.0.0.1:8080`.
    pub url: String,
    /// The machine name.
    pub login: String,
    /// The machine password.
    pub password: String,
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credentials")
            .field("url", &self.url)
            .field("login", &self.login)
            .field("password", &"<hidden>")
            .finish()
    }
}

impl Credentials {
    /// Reads and checks the credentials file at `path` (see the [module docs](self)).
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when the file cannot be read, is not a regular file, can be
    /// read or written by anyone but root (or a directory above it can be written by anyone
    /// but root), or lacks `url`, `login` or `password`, or the URL is not `http://`.
    pub fn load(path: &Path) -> Result<Self, ResponderError> {
        let problem = |what: String| {
            ResponderError::Config(format!("CROWDSEC_CREDENTIALS {}: {what}", path.display()))
        };
        // A FIFO or device would block or misbehave on open: refuse it by its path first.
        if !fs::metadata(path)
            .map_err(|e| problem(e.to_string()))?
            .is_file()
        {
            return Err(problem("is not a regular file".into()));
        }
        // Checked on the opened descriptor, then the path's directories, then that the path
        // still names the file that was opened: no swap between check and read.
        let file = fs::File::open(path).map_err(|e| problem(e.to_string()))?;
        let metadata = file.metadata().map_err(|e| problem(e.to_string()))?;
        if !metadata.is_file() {
            return Err(problem("is not a regular file".into()));
        }
        if metadata.mode() & 0o077 != 0 {
            return Err(problem(format!(
                "holds a password but its mode is {:04o}: only its owner may read it \
                 (chmod 600)",
                metadata.mode() & 0o7777
            )));
        }
        let findings = permissions::check_file(path).map_err(|e| problem(e.to_string()))?;
        if let Some(finding) = findings.first() {
            return Err(ResponderError::Config(format!(
                "CROWDSEC_CREDENTIALS {finding}"
            )));
        }
        let named = fs::metadata(path).map_err(|e| problem(e.to_string()))?;
        if (named.dev(), named.ino()) != (metadata.dev(), metadata.ino()) {
            return Err(problem("was replaced while it was being checked".into()));
        }
        let mut text = String::new();
        file.take(MAX_CREDENTIALS_BYTES + 1)
            .read_to_string(&mut text)
            .map_err(|e| problem(e.to_string()))?;
        if text.len() as u64 > MAX_CREDENTIALS_BYTES {
            return Err(problem(format!(
                "is larger than {MAX_CREDENTIALS_BYTES} bytes"
            )));
        }
        Self::parse(&text).map_err(problem)
    }

    /// Parses the YAML `cscli` writes: one `key: value` per line, values optionally quoted;
    /// other keys (`ca_cert_path`, ...) are ignored.
    ///
    /// # Errors
    ///
    /// A message naming the missing key, or saying why the URL is refused.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::respond::crowdsec::Credentials;
    ///
    /// let c = Credentials::parse("url: http://127.0.0.1:8080/\nlogin: web1\npassword: 's3'\n")?;
    /// assert_eq!(c.url, "http://127.0.0.1:8080");
    /// assert_eq!((c.login.as_str(), c.password.as_str()), ("web1", "s3"));
    /// # Ok::<(), String>(())
    /// ```
    pub fn parse(text: &str) -> Result<Self, String> {
        let mut url = None;
        let mut login = None;
        let mut password = None;
        for line in text.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((key, value)) = line.split_once(':') else {
                continue;
            };
            let value = unquote(value.trim()).to_owned();
            match key.trim() {
                "url" => url = Some(value),
                "login" => login = Some(value),
                "password" => password = Some(value),
                _ => {}
            }
        }
        let missing = |key: &str| format!("has no `{key}:` line");
        let url = url.ok_or_else(|| missing("url"))?;
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            format!("url {url:?}: only http:// Local API URLs are supported (no TLS)")
        })?;
        if rest.is_empty() || rest.contains(char::is_whitespace) {
            return Err(format!("url {url:?} has no host"));
        }
        let credentials = Self {
            url: url.trim_end_matches('/').to_owned(),
            login: login.ok_or_else(|| missing("login"))?,
            password: password.ok_or_else(|| missing("password"))?,
        };
        if credentials.login.is_empty() || credentials.password.is_empty() {
            return Err("has an empty login or password".into());
        }
        Ok(credentials)
    }
}

fn unquote(value: &str) -> &str {
    for quote in ['"', '\''] {
        if let Some(inner) = value
            .strip_prefix(quote)
            .and_then(|v| v.strip_suffix(quote))
        {
            return inner;
        }
    }
    value
}

/// Pushes blocks to a CrowdSec Local API; see the [module docs](self).
#[derive(Debug)]
pub struct CrowdsecResponder {
    credentials: Credentials,
    agent: ureq::Agent,
    token: Option<(String, Instant)>,
    duration: Duration,
    paused_until: Option<(Instant, String)>,
}

impl CrowdsecResponder {
    /// A responder for `credentials`, whose decisions last `duration` (`None`: forever).
    pub fn new(credentials: Credentials, duration: Option<Duration>) -> Self {
        let agent = ureq::AgentBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .redirects(0)
            .user_agent(concat!("portsentry/", env!("CARGO_PKG_VERSION")))
            .build();
        Self {
            credentials,
            agent,
            token: None,
            duration: duration.unwrap_or(FOREVER),
            paused_until: None,
        }
    }

    /// The responder for `config`, or `None` without `CROWDSEC_CREDENTIALS`.
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when the credentials file is unusable (see
    /// [`Credentials::load`]).
    pub fn from_config(config: &Config) -> Result<Option<Self>, ResponderError> {
        config
            .crowdsec_credentials
            .as_deref()
            .map(|path| Ok(Self::new(Credentials::load(path)?, config.block_timeout)))
            .transpose()
    }

    /// The Local API's base URL.
    pub fn url(&self) -> &str {
        &self.credentials.url
    }

    fn login(&mut self) -> Result<String, String> {
        let body = json!({
            "machine_id": self.credentials.login,
            "password": self.credentials.password,
            "scenarios": Mode::ALL.iter().map(|m| scenario(*m)).collect::<Vec<_>>(),
        });
        let url = format!("{}/v1/watchers/login", self.credentials.url);
        let answer = self
            .agent
            .post(&url)
            .set("Content-Type", "application/json")
            .send_string(&body.to_string())
            .map_err(|e| describe(&e))?;
        let text = answer
            .into_string()
            .map_err(|e| format!("login answer: {e}"))?;
        let token = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("token")?.as_str().map(str::to_owned))
            .ok_or_else(|| "login answer has no token".to_owned())?;
        self.token = Some((token.clone(), Instant::now()));
        Ok(token)
    }

    fn token(&mut self) -> Result<String, String> {
        match &self.token {
            Some((token, at)) if at.elapsed() < TOKEN_LIFETIME => Ok(token.clone()),
            _ => self.login(),
        }
    }

    /// Sends the request `build` makes (with a token) and `body` (a JSON text, or none),
    /// logging in again once when the token is refused, and retrying transport errors and
    /// server errors up to [`ATTEMPTS`] times.
    fn call(
        &mut self,
        build: impl Fn(&ureq::Agent, &str, &str) -> ureq::Request,
        body: Option<&str>,
    ) -> Result<String, String> {
        if let Some((until, why)) = &self.paused_until {
            if Instant::now() < *until {
                return Err(format!("Local API unavailable ({why}); not retried yet"));
            }
            self.paused_until = None;
        }
        let mut last = String::new();
        for attempt in 0..ATTEMPTS {
            if attempt > 0 {
                std::thread::sleep(Duration::from_millis(200 << attempt));
            }
            let token = match self.token() {
                Ok(token) => token,
                Err(e) => {
                    last = format!("login failed: {e}");
                    continue;
                }
            };
            let request = build(&self.agent, &self.credentials.url, &token);
            let sent = match body {
                Some(body) => request
                    .set("Content-Type", "application/json")
                    .send_string(body),
                None => request.call(),
            };
            match sent {
                Ok(answer) => return Ok(answer.into_string().unwrap_or_default()),
                Err(ureq::Error::Status(401 | 403, _)) => {
                    self.token = None;
                    last = "the token was refused".into();
                }
                Err(ureq::Error::Status(code, answer)) if code < 500 => {
                    // The request itself is wrong: retrying cannot help.
                    return Err(status_text(code, answer));
                }
                Err(e) => last = describe(&e),
            }
        }
        self.paused_until = Some((Instant::now() + PAUSE_AFTER_FAILURE, last.clone()));
        Err(last)
    }

    fn push_ban(&mut self, alert: &Alert, duration: Duration) -> Result<String, String> {
        let body = alert_body(alert, duration, SystemTime::now()).to_string();
        self.call(
            |agent, url, token| {
                agent
                    .post(&format!("{url}/v1/alerts"))
                    .set("Authorization", &format!("Bearer {token}"))
            },
            Some(&body),
        )
    }

    /// Whether the Local API holds an active ban of `ip` made by portsentry.
    fn has_ban(&mut self, ip: &str) -> Result<bool, String> {
        let answer = self.call(
            |agent, url, token| {
                agent
                    .get(&format!("{url}/v1/alerts"))
                    .query("ip", ip)
                    .query("has_active_decision", "true")
                    .set("Authorization", &format!("Bearer {token}"))
            },
            None,
        )?;
        let alerts: Value =
            serde_json::from_str(&answer).map_err(|e| format!("alerts answer: {e}"))?;
        let ours = |d: &Value| {
            d["origin"] == ORIGIN
                && d["type"] == "ban"
                && d["value"] == ip
                && d["duration"].as_str().is_some_and(|t| !t.starts_with('-'))
        };
        Ok(alerts
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|a| a["decisions"].as_array())
            .flatten()
            .any(ours))
    }

    fn delete(&mut self, address: IpAddr) -> Result<String, String> {
        let ip = address_text(address);
        self.call(
            |agent, url, token| {
                agent
                    .delete(&format!("{url}/v1/decisions"))
                    .query("ip", &ip)
                    .set("Authorization", &format!("Bearer {token}"))
            },
            None,
        )
    }

    fn step(&self, action: &str, detail: String, result: &Result<String, String>) -> Step {
        Step {
            action: Action::Custom(action.to_owned()),
            detail: format!("{} {detail}", self.credentials.url),
            error: result.as_ref().err().cloned(),
        }
    }
}

impl Responder for CrowdsecResponder {
    fn name(&self) -> &str {
        "crowdsec"
    }

    fn role(&self) -> Role {
        Role::Block
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        if ctx.alert.response != BlockMode::Block {
            return Ok(Outcome::Skipped);
        }
        let ip = address_text(ctx.alert.probe.source);
        let result = self.push_ban(ctx.alert, self.duration);
        let detail = format!(
            "ban {ip} for {}s ({})",
            self.duration.as_secs(),
            scenario(ctx.alert.mode)
        );
        let step = self.step("crowdsec", detail, &result);
        match result {
            Ok(_) => Ok(Outcome::Acted(vec![step])),
            Err(_) => Err(ResponderError::BlockFailed { steps: vec![step] }),
        }
    }

    /// Reconciliation: a ban still held by the Local API is left alone (no churn for the
    /// bouncers); a missing one (deleted by hand, a reset database) is pushed again for the
    /// time the block has left.
    fn on_reapply(&mut self, ctx: &ReapplyContext<'_>) -> Result<Outcome, ResponderError> {
        if ctx.alert.response != BlockMode::Block {
            return Ok(Outcome::Skipped);
        }
        let ip = address_text(ctx.record.address);
        let duration = ctx.remaining.unwrap_or(FOREVER);
        let (detail, result) = match self.has_ban(&ip) {
            Ok(true) => (format!("ban {ip} in force"), Ok(String::new())),
            Ok(false) if duration < MIN_REMAINING_TO_PUSH => {
                (format!("ban {ip} ending"), Ok(String::new()))
            }
            Ok(false) => (
                format!(
                    "ban {ip} again for {}s ({})",
                    duration.as_secs(),
                    scenario(ctx.alert.mode)
                ),
                self.push_ban(ctx.alert, duration),
            ),
            Err(e) => (format!("ban {ip}"), Err(e)),
        };
        let step = self.step("crowdsec", detail, &result);
        match result {
            Ok(_) => Ok(Outcome::Acted(vec![step])),
            Err(_) => Err(ResponderError::BlockFailed { steps: vec![step] }),
        }
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        let ip = address_text(ctx.release.address);
        let result = self.delete(ctx.release.address);
        let step = self.step(
            "crowdsec_remove",
            format!("delete decisions for {ip}"),
            &result,
        );
        match result {
            Ok(_) => Ok(Outcome::Acted(vec![step])),
            Err(_) => Err(ResponderError::BlockFailed { steps: vec![step] }),
        }
    }
}

/// The scenario name of a mode's alerts: `portsentry/stcp`, ...
pub fn scenario(mode: Mode) -> String {
    format!("portsentry/{}", mode.as_str())
}

/// The `POST /v1/alerts` body for one alert: an array of one alert carrying its decision.
fn alert_body(alert: &Alert, duration: Duration, now: SystemTime) -> Value {
    let probe = &alert.probe;
    let ip = address_text(probe.source);
    let scenario = scenario(alert.mode);
    let now = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(Timestamp::ZERO, |d| {
            Timestamp::from_secs_nanos(d.as_secs(), d.subsec_nanos())
        });
    // The Local API counts a decision's duration from the alert's stop time.
    let start = timefmt::rfc3339_utc(probe.at.min(now));
    let stop = timefmt::rfc3339_utc(now);
    let meta = |key: &str, value: String| json!({"key": key, "value": value});
    json!([{
        "scenario": scenario,
        "scenario_hash": "",
        "scenario_version": env!("CARGO_PKG_VERSION"),
        "message": format!(
            "portsentry: {} scan from {ip} ({} distinct port(s), last {} port {})",
            alert.mode.as_str(),
            alert.distinct_ports,
            probe.protocol.as_str(),
            probe.destination_port
        ),
        "events_count": alert.distinct_ports,
        "start_at": start,
        "stop_at": stop,
        "capacity": 0,
        "leakspeed": "0",
        "simulated": false,
        "remediation": true,
        "events": [{
            "timestamp": timefmt::rfc3339_utc(probe.at),
            "meta": [
                meta("source_ip", ip.clone()),
                meta("dst_port", probe.destination_port.to_string()),
                meta("service", probe.protocol.as_str().to_owned()),
                meta("scan_type", probe.kind.as_str().to_owned()),
                meta("mode", alert.mode.as_str().to_owned()),
            ],
        }],
        "source": {"scope": "Ip", "value": ip, "ip": ip},
        "decisions": [{
            "duration": format!("{}s", duration.as_secs().max(1)),
            "origin": ORIGIN,
            "scenario": scenario,
            "scope": "Ip",
            "type": "ban",
            "value": ip,
        }],
    }])
}

/// One line for a failed request (the body of an error answer is cut short).
fn describe(error: &ureq::Error) -> String {
    match error {
        ureq::Error::Status(code, _) => format!("HTTP status {code}"),
        ureq::Error::Transport(t) => t.to_string(),
    }
}

fn status_text(code: u16, answer: ureq::Response) -> String {
    let body = answer.into_string().unwrap_or_default();
    let body: String = body.chars().take(200).collect();
    format!("HTTP status {code}: {}", body.trim())
}

#[cfg(test)]
mod tests;
