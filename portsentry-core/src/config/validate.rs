//! Validation: tokenized entries in, a typed [`Config`] (or every problem) out.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

use super::conf_file::{ConfFile, Entry};
use super::error::{ConfigProblem, ConfigWarning, ProblemKind, WarningKind};
use super::keys;
use super::{BlockMode, Config, HistoryFormat};
use crate::located::Located;
use crate::ports::PortSet;

/// The largest `SCAN_TRIGGER`: more distinct ports than one protocol has cannot be reached.
/// The tracker keeps per-source state for at most this many distinct ports.
pub(crate) const MAX_SCAN_TRIGGER: u64 = crate::tracker::MAX_SCAN_TRIGGER as u64;
/// The largest `SCAN_WINDOW`, in seconds (7 days).
pub(crate) const MAX_SCAN_WINDOW: u64 = 604_800;
/// The largest `MAX_TRACKED_SOURCES` (2^24 sources, a few GiB at most).
pub(crate) const MAX_TRACKED_SOURCES: u64 = 16_777_216;
/// The largest `BLOCK_TIMEOUT`, in seconds (10 years; use 0 for "never").
pub(crate) const MAX_BLOCK_TIMEOUT: u64 = 315_360_000;
/// The largest `MAX_BLOCKS`.
pub(crate) const MAX_BLOCKS: u64 = 1_048_576;
/// The largest `BLOCK_RATE`, in new blocks per minute.
pub(crate) const MAX_BLOCK_RATE: u64 = 1_000_000;
/// The largest `RECONCILE_INTERVAL`, in seconds (a day).
pub(crate) const MAX_RECONCILE_INTERVAL: u64 = 86_400;
/// The largest `STOP_TIMEOUT`, in seconds (an hour).
pub(crate) const MAX_STOP_TIMEOUT: u64 = 3_600;

/// The result of validation: the configuration or every problem, plus every warning.
pub(crate) struct Outcome {
    pub(crate) config: Result<Config, Vec<ConfigProblem>>,
    pub(crate) warnings: Vec<ConfigWarning>,
}

/// Validates a tokenized file. `origin` names the file in problems and warnings.
pub(crate) fn validate(file: &ConfFile<'_>, origin: &str) -> Outcome {
    let mut v = Validator {
        origin,
        config: Config::absent(),
        problems: Vec::new(),
        warnings: Vec::new(),
        last: HashMap::new(),
        malformed: HashSet::new(),
    };
    for error in &file.errors {
        v.problem(error.line, error.key, error.kind.into());
        v.malformed.extend(error.key);
    }
    for entry in &file.entries {
        v.entry(entry);
    }
    v.cross_checks();
    v.problems.sort_by_key(|p| p.line);
    v.warnings.sort_by_key(|w| w.line);
    Outcome {
        config: if v.problems.is_empty() {
            Ok(v.config)
        } else {
            Err(v.problems)
        },
        warnings: v.warnings,
    }
}

struct Validator<'t, 'o> {
    origin: &'o str,
    config: Config,
    problems: Vec<ConfigProblem>,
    warnings: Vec<ConfigWarning>,
    /// The last entry of each known key.
    last: HashMap<&'t str, Entry<'t>>,
    /// Keys with a malformed line: they count as set, so one mistake gives one error.
    malformed: HashSet<&'t str>,
}

impl<'t> Validator<'t, '_> {
    fn locate<K>(&self, line: usize, key: Option<&str>, kind: K) -> Located<K> {
        Located {
            file: self.origin.to_owned(),
            line: Some(line),
            key: key.map(str::to_owned),
            kind,
        }
    }

    fn problem(&mut self, line: usize, key: Option<&str>, kind: ProblemKind) {
        let p = self.locate(line, key, kind);
        self.problems.push(p);
    }

    fn warn(&mut self, line: usize, key: Option<&str>, kind: WarningKind) {
        let w = self.locate(line, key, kind);
        self.warnings.push(w);
    }

    fn entry(&mut self, entry: &Entry<'t>) {
        if keys::lookup(entry.key).is_none() {
            let suggestion = keys::suggest(entry.key);
            self.warn(
                entry.line,
                Some(entry.key),
                WarningKind::UnknownKey { suggestion },
            );
            return;
        }
        if let Some(previous) = self.last.insert(entry.key, *entry) {
            self.warn(
                entry.line,
                Some(entry.key),
                WarningKind::Duplicate {
                    previous_line: previous.line,
                },
            );
        }
        if let Err(kind) = apply(&mut self.config, entry.key, entry.value) {
            self.problem(entry.line, Some(entry.key), kind);
        }
    }

    /// True when the key's last line has a non-empty value (valid or not), or the key has a
    /// malformed line (already reported).
    fn is_set(&self, key: &str) -> bool {
        self.malformed.contains(key) || self.last.get(key).is_some_and(|e| !e.value.is_empty())
    }

    fn cross_checks(&mut self) {
        for key in ["BLOCK_TCP", "BLOCK_UDP"] {
            let Some(entry) = self.last.get(key).copied() else {
                continue;
            };
            match block_mode(entry.value) {
                Ok(BlockMode::Block)
                    if ![
                        "KILL_ROUTE",
                        "KILL_HOSTS_DENY",
                        "NFT_SET",
                        "CROWDSEC_CREDENTIALS",
                        "KILL_RUN_CMD",
                    ]
                    .iter()
                    .any(|k| self.is_set(k)) =>
                {
                    self.problem(entry.line, Some(key), ProblemKind::BlockWithoutAction);
                }
                Ok(BlockMode::RunCommandOnly) if !self.is_set("KILL_RUN_CMD") => {
                    self.problem(entry.line, Some(key), ProblemKind::RunWithoutCommand);
                }
                _ => {}
            }
        }
        if let Some(entry) = self.last.get("KILL_RUN_CMD_FIRST").copied()
            && entry.value.trim() == "1"
            && !self.is_set("KILL_RUN_CMD")
        {
            self.warn(
                entry.line,
                Some(entry.key),
                WarningKind::NoEffect {
                    reason: "KILL_RUN_CMD is not set",
                },
            );
        }
        if let Some(entry) = self.last.get("UNBLOCK_CMD").copied()
            && !entry.value.is_empty()
            && self.config.block_timeout.is_none()
        {
            self.warn(
                entry.line,
                Some(entry.key),
                WarningKind::NoEffect {
                    reason: "blocks never expire (BLOCK_TIMEOUT is 0 or not set)",
                },
            );
        }
        self.blocking_checks();
        if !self.last.contains_key("TCP_PORTS") && !self.last.contains_key("UDP_PORTS") {
            self.warnings.push(Located {
                file: self.origin.to_owned(),
                line: None,
                key: None,
                kind: WarningKind::NoPortLists,
            });
        }
    }
}

impl Validator<'_, '_> {
    /// Warnings about blocking that anyone can trigger with forged packets: a trigger below 2
    /// (one forged packet blocks a host) and blocks that never expire (forged blocks pile up).
    fn blocking_checks(&mut self) {
        let blocking = ["BLOCK_TCP", "BLOCK_UDP"]
            .iter()
            .filter_map(|key| self.last.get(key).copied())
            .find(|e| matches!(block_mode(e.value), Ok(m) if m != BlockMode::LogOnly));
        let Some(entry) = blocking else {
            return;
        };
        if self.config.scan_trigger < 2 {
            let line = self.last.get("SCAN_TRIGGER").map_or(entry.line, |e| e.line);
            self.warn(line, Some("SCAN_TRIGGER"), WarningKind::ForgeableTrigger);
        }
        if self.config.block_timeout.is_none() {
            let line = self
                .last
                .get("BLOCK_TIMEOUT")
                .map_or(entry.line, |e| e.line);
            self.warn(line, Some("BLOCK_TIMEOUT"), WarningKind::BlocksNeverExpire);
        }
    }
}

/// Parses `value` for `key` and stores it in `config` (the last valid line wins).
fn apply(config: &mut Config, key: &str, value: &str) -> Result<(), ProblemKind> {
    match key {
        "TCP_PORTS" => config.tcp_ports = port_list(value)?,
        "UDP_PORTS" => config.udp_ports = port_list(value)?,
        "ADVANCED_PORTS_TCP" => config.advanced_ports_tcp = advanced_bound(value)?,
        "ADVANCED_PORTS_UDP" => config.advanced_ports_udp = advanced_bound(value)?,
        "ADVANCED_EXCLUDE_TCP" => config.advanced_exclude_tcp = exclude_list(value)?,
        "ADVANCED_EXCLUDE_UDP" => config.advanced_exclude_udp = exclude_list(value)?,
        "IGNORE_FILE" => config.ignore_file = optional_path(value)?,
        "HISTORY_FILE" => config.history_file = optional_path(value)?,
        "BLOCKED_FILE" => config.blocked_file = optional_path(value)?,
        "RESOLVE_HOST" => config.resolve_host = switch(value)?,
        "BLOCK_TCP" => config.block_tcp = block_mode(value)?,
        "BLOCK_UDP" => config.block_udp = block_mode(value)?,
        "KILL_ROUTE" => config.kill_route = target_template(value)?,
        "KILL_HOSTS_DENY" => config.kill_hosts_deny = target_template(value)?,
        "KILL_RUN_CMD" => config.kill_run_cmd = optional_text(value),
        "KILL_RUN_CMD_FIRST" => config.kill_run_cmd_first = switch(value)?,
        "SCAN_TRIGGER" => {
            let n = number(value, 0, MAX_SCAN_TRIGGER, "a number from 0 to 64")?;
            config.scan_trigger = u32::try_from(n).unwrap_or(u32::MAX);
        }
        "PORT_BANNER" => config.port_banner = optional_text(value),
        "HISTORY_FORMAT" => config.history_format = history_format(value)?,
        "UNBLOCK_CMD" => config.unblock_cmd = optional_text(value),
        "HOSTS_DENY_FILE" => {
            config.hosts_deny_file =
                optional_path(value)?.ok_or(ProblemKind::EmptyValue { expected: "a path" })?;
        }
        "SCAN_WINDOW" => {
            let secs = number(value, 1, MAX_SCAN_WINDOW, "seconds, from 1 to 604800")?;
            config.scan_window = Duration::from_secs(secs);
        }
        "MAX_TRACKED_SOURCES" => {
            let n = number(value, 1, MAX_TRACKED_SOURCES, "a number from 1 to 16777216")?;
            config.max_tracked_sources = usize::try_from(n).unwrap_or(usize::MAX);
        }
        "BLOCK_TIMEOUT" => {
            let secs = number(
                value,
                0,
                MAX_BLOCK_TIMEOUT,
                "seconds, from 0 (never expire) to 315360000",
            )?;
            config.block_timeout = (secs > 0).then(|| Duration::from_secs(secs));
        }
        "DETECT_ACK_SCANS" => config.detect_ack_scans = switch(value)?,
        "NEVER_BLOCK_GATEWAYS" => config.never_block_infrastructure = switch(value)?,
        "NFT_SET" => config.nft_set = nft_set(value)?,
        "CROWDSEC_CREDENTIALS" => config.crowdsec_credentials = optional_path(value)?,
        "PROBE_EVENTS" => {
            let n = number(
                value,
                0,
                u64::from(crate::respond::probe_events::MAX_PER_SECOND),
                "lines per second, from 0 (off) to 10000",
            )?;
            config.probe_events_per_second = u32::try_from(n).unwrap_or(u32::MAX);
        }
        "MAX_BLOCKS" => {
            let n = number(value, 1, MAX_BLOCKS, "a number from 1 to 1048576")?;
            config.max_blocks = usize::try_from(n).unwrap_or(usize::MAX);
        }
        "BLOCK_RATE" => {
            let n = number(
                value,
                0,
                MAX_BLOCK_RATE,
                "new blocks per minute, from 0 (no limit) to 1000000",
            )?;
            config.block_rate = u32::try_from(n).unwrap_or(u32::MAX);
        }
        "RECONCILE_INTERVAL" => {
            let secs = number(
                value,
                0,
                MAX_RECONCILE_INTERVAL,
                "seconds, from 0 (only at start and reload) to 86400",
            )?;
            config.reconcile_interval = (secs > 0).then(|| Duration::from_secs(secs));
        }
        "STOP_TIMEOUT" => {
            let secs = number(value, 1, MAX_STOP_TIMEOUT, "seconds, from 1 to 3600")?;
            config.stop_timeout = Duration::from_secs(secs);
        }
        "CONTROL_GROUP" => config.control_group = group_name(value)?,
        // Unknown keys are filtered out by the caller; nothing to store.
        _ => {}
    }
    Ok(())
}

fn port_list(value: &str) -> Result<PortSet, ProblemKind> {
    if value.trim().is_empty() {
        return Err(ProblemKind::EmptyValue {
            expected: "a port list like \"1,7,512-515\" (remove the line to watch no port)",
        });
    }
    Ok(PortSet::parse(value)?)
}

fn exclude_list(value: &str) -> Result<PortSet, ProblemKind> {
    if value.trim().is_empty() {
        Ok(PortSet::new())
    } else {
        Ok(PortSet::parse(value)?)
    }
}

fn advanced_bound(value: &str) -> Result<u16, ProblemKind> {
    let n = number(value, 1, 65_535, "a number from 1 to 65535")?;
    Ok(u16::try_from(n).unwrap_or(u16::MAX))
}

/// A decimal whole number within `min..=max`; never wraps around.
fn number(value: &str, min: u64, max: u64, expected: &'static str) -> Result<u64, ProblemKind> {
    let text = value.trim();
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if text.is_empty() {
        return Err(ProblemKind::EmptyValue { expected });
    }
    let out_of_range = || ProblemKind::OutOfRange {
        value: text.to_owned(),
        expected,
    };
    if text.strip_prefix('-').is_some_and(digits) {
        return Err(out_of_range());
    }
    if !digits(text) {
        return Err(ProblemKind::NotANumber {
            value: text.to_owned(),
            expected,
        });
    }
    match text.parse::<u64>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(out_of_range()),
    }
}

fn switch(value: &str) -> Result<bool, ProblemKind> {
    match value.trim() {
        "0" => Ok(false),
        "1" => Ok(true),
        "" => Err(ProblemKind::EmptyValue {
            expected: "0 (off) or 1 (on)",
        }),
        other => Err(ProblemKind::NotASwitch {
            value: other.to_owned(),
        }),
    }
}

fn block_mode(value: &str) -> Result<BlockMode, ProblemKind> {
    match value.trim() {
        "0" => Ok(BlockMode::LogOnly),
        "1" => Ok(BlockMode::Block),
        "2" => Ok(BlockMode::RunCommandOnly),
        "" => Err(ProblemKind::EmptyValue {
            expected: "0 (log only), 1 (block) or 2 (run KILL_RUN_CMD only)",
        }),
        other => Err(ProblemKind::NotABlockMode {
            value: other.to_owned(),
        }),
    }
}

fn history_format(value: &str) -> Result<HistoryFormat, ProblemKind> {
    match value.trim() {
        "classic" => Ok(HistoryFormat::Classic),
        "v2" => Ok(HistoryFormat::V2),
        "json" => Ok(HistoryFormat::Json),
        "" => Err(ProblemKind::EmptyValue {
            expected: "classic, v2 or json",
        }),
        other => Err(ProblemKind::NotAHistoryFormat {
            value: other.to_owned(),
        }),
    }
}

fn optional_path(value: &str) -> Result<Option<PathBuf>, ProblemKind> {
    let text = value.trim();
    if text.chars().any(char::is_control) {
        return Err(ProblemKind::ControlCharacterInPath);
    }
    Ok((!text.is_empty()).then(|| PathBuf::from(text)))
}

fn optional_text(value: &str) -> Option<String> {
    (!value.is_empty()).then(|| value.to_owned())
}

fn target_template(value: &str) -> Result<Option<String>, ProblemKind> {
    match optional_text(value) {
        Some(text) if !text.contains("$TARGET$") => Err(ProblemKind::MissingTarget),
        other => Ok(other),
    }
}

/// A group name as `useradd` accepts them (letters, digits, `_`, `.`, `-`, not starting
/// with `-`, at most 32 bytes) or a numeric gid; `""`: none.
fn group_name(value: &str) -> Result<Option<String>, ProblemKind> {
    let name = value.trim();
    if name.is_empty() {
        return Ok(None);
    }
    let valid = name.len() <= 32
        && !name.starts_with('-')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
    if valid {
        Ok(Some(name.to_owned()))
    } else {
        Err(ProblemKind::NotAGroup {
            value: value.to_owned(),
        })
    }
}

fn nft_set(value: &str) -> Result<Option<String>, ProblemKind> {
    let words: Vec<&str> = value.split_whitespace().collect();
    if words.is_empty() {
        return Ok(None);
    }
    let fail = |reason| ProblemKind::NotAnNftSet {
        value: value.to_owned(),
        reason,
    };
    let [family, table, set] = words[..] else {
        return Err(fail(
            "expected three words: FAMILY TABLE SET, e.g. \"inet portsentry blocked\"",
        ));
    };
    if !matches!(family, "ip" | "ip6" | "inet") {
        return Err(fail("the family must be ip, ip6 or inet"));
    }
    let name_ok = |name: &str| {
        name.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    };
    if !name_ok(table) || !name_ok(set) {
        return Err(fail(
            "table and set names may only hold letters, digits, `_` and `-`",
        ));
    }
    Ok(Some(words.join(" ")))
}
