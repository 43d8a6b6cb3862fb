//! `portsentry.conf`: both PortSentry dialects, parsed and validated into a typed [`Config`].
//!
//! Loading has two steps: [`conf_file::parse`] splits the text into `KEY="value"` entries with
//! line numbers (pure, fuzzed), then validation turns them into a [`Config`], collecting every
//! problem of the file at once. [`Config::load`] adds the file reading; [`Config::parse_str`]
//! works on text. The embedded default ([`DEFAULT_CONF`]) is what [`Config::default`] parses.
//!
//! ```
//! use portsentry_core::Config;
//! let loaded = Config::parse_str("TCP_PORTS=\"1,512-515\"\nRESOLVE_HOST = \"0\"\n", "example").unwrap();
//! assert!(loaded.config.tcp_ports.contains(514));
//! assert!(loaded.warnings.is_empty());
//!
//! let err = Config::parse_str("TCP_PORTS=\"20-10\"\nBLOCK_TCP=\"3\"\n", "bad.conf").unwrap_err();
//! let portsentry_core::config::ConfigError::Invalid { problems, .. } = err else { panic!() };
//! assert_eq!(problems.len(), 2); // every problem of the file, not only the first
//! assert!(problems[1].to_string().starts_with("bad.conf:2: BLOCK_TCP: "));
//! ```
//!
//! # Keys
//!
//! "1.2+2.0" keys are shared by both PortSentry versions, "1.2" keys exist only in 1.2
//! (PortSentry 2.0 refuses them; we accept them), "new" keys are ours. "Absent" is the value
//! when the key is not in the file (the embedded default sets some of them differently).
//!
//! | Key | From | Value | Absent |
//! |---|---|---|---|
//! | `TCP_PORTS` | 1.2+2.0 | port list: `1,11,512-515` (ports 1-65535, inclusive ranges) | none |
//! | `UDP_PORTS` | 1.2+2.0 | port list | none |
//! | `ADVANCED_PORTS_TCP` | 1.2 | 1-65535: `atcp` watches ports below it, port 0 included | 1024 |
//! | `ADVANCED_PORTS_UDP` | 1.2 | 1-65535: `audp` watches ports below it | 1024 |
//! | `ADVANCED_EXCLUDE_TCP` | 1.2 | port list never watched by `atcp` (may be `""`) | none |
//! | `ADVANCED_EXCLUDE_UDP` | 1.2 | port list never watched by `audp` (may be `""`) | none |
//! | `IGNORE_FILE` | 1.2+2.0 | path of the never-block list ([`crate::ignore`]); `""`: none | none |
//! | `HISTORY_FILE` | 1.2+2.0 | path of the append-only alert record; `""`: none | none |
//! | `BLOCKED_FILE` | 1.2+2.0 | path of the persistent block table; `""`: none | none |
//! | `RESOLVE_HOST` | 1.2+2.0 | 0/1: show resolved names in logs (never in commands) | 0 |
//! | `BLOCK_TCP` | 1.2+2.0 | 0 log only, 1 run the blocking actions, 2 run `KILL_RUN_CMD` only | 0 |
//! | `BLOCK_UDP` | 1.2+2.0 | same, for UDP | 0 |
//! | `KILL_ROUTE` | 1.2+2.0 | shell command; must contain `$TARGET$` | none |
//! | `KILL_HOSTS_DENY` | 1.2+2.0 | hosts.deny line; must contain `$TARGET$`; `\%` kept as written | none |
//! | `KILL_RUN_CMD` | 1.2+2.0 | shell command; `$TARGET$`, `$PORT$`, `$MODE$` optional | none |
//! | `KILL_RUN_CMD_FIRST` | 1.2+2.0 | 0/1: run `KILL_RUN_CMD` before the other actions | 0 |
//! | `SCAN_TRIGGER` | 1.2+2.0 | 0-64: 0 and 1 alarm at once, N at the Nth distinct port | 0 |
//! | `PORT_BANNER` | 1.2+2.0 | text sent in the connect modes, with an alert only, once per source per `SCAN_WINDOW`; `""`: none | none |
//! | `HISTORY_FORMAT` | new | `classic` (1.2, fail2ban), `v2` (2.0 `Scan from:`), `json` | classic |
//! | `UNBLOCK_CMD` | new | shell command run when a block expires | none |
//! | `HOSTS_DENY_FILE` | new | where `KILL_HOSTS_DENY` lines go | `/etc/hosts.deny` |
//! | `SCAN_WINDOW` | new | seconds (1-604800) a source's probes are remembered | 300 |
//! | `MAX_TRACKED_SOURCES` | new | 1-16777216 sources tracked at once | 65536 |
//! | `BLOCK_TIMEOUT` | new | seconds a block lasts, 0 = forever (max 315360000) | 0 |
//! | `DETECT_ACK_SCANS` | new | 0/1: count bare-ACK and FIN+ACK probes | 0 |
//! | `NEVER_BLOCK_GATEWAYS` | new | 0/1: never block default gateways and resolvers | 1 |
//! | `CROWDSEC_CREDENTIALS` | new | CrowdSec machine credentials file: blocks become Local API decisions; `""`: none | none |
//! | `PROBE_EVENTS` | new | 0-10000: `probe:` lines per second for a source's first port below the trigger; 0 off | 0 |
//! | `NFT_SET` | new | `"FAMILY TABLE SET"`, family `ip`/`ip6`/`inet`, names `[A-Za-z0-9_-]`; `""`: none | none |
//! | `MAX_BLOCKS` | new | 1-1048576 hosts blocked at once; further alerts are counted, not blocked | 512 |
//! | `BLOCK_RATE` | new | 0-1000000 new blocks per minute (burst of as many); 0 = no limit | 60 |
//! | `RECONCILE_INTERVAL` | new | seconds (0-86400) between re-applications of the block table; 0 = at start and reload only | 60 |
//! | `STOP_TIMEOUT` | new | seconds (1-3600) a stop waits for queued actions | 10 |
//! | `CONTROL_GROUP` | new | group (name or gid) whose members may use the control socket besides root; `""`: root only | none |
//!
//! Numbers are decimal, without sign; switches are exactly `0` or `1`; `""` is an error for
//! every key whose column above does not say what `""` means.
//!
//! # Differences from PortSentry, on purpose
//!
//! * Keys match exactly (2.0 accepted any prefix: `BLOCK` meant `BLOCK_TCP`).
//! * A key set twice: the last line wins (as in 2.0; 1.2 took the first) and a warning names
//!   both lines. Unknown keys are a warning with file:line (1.2 ignored them, 2.0 refused to start).
//! * Every bad value is an error naming file, line and key, and all of them are reported in one
//!   run: nothing is turned into 0 by `atoi`, no port entry is silently dropped, `SCAN_TRIGGER`
//!   never wraps around (2.0 read 70000 as 4464), there is no 64-port limit.
//! * Relative `HISTORY_FILE`/`BLOCKED_FILE` paths are relative to the state directory
//!   ([`state_directory`], applied by [`Config::resolve_state_paths`]); relative
//!   `IGNORE_FILE`/`HOSTS_DENY_FILE` paths are relative to the directory of the config file.

pub mod conf_file;
mod error;
pub mod keys;
mod state_dir;
mod validate;

use std::path::Path;
use std::path::PathBuf;
use std::time::Duration;

use crate::permissions::{self, PermissionFinding, ReadError};
use crate::ports::PortSet;

/// What to do when a source crosses the trigger (`BLOCK_TCP` / `BLOCK_UDP`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum BlockMode {
    /// `0`: log only; nothing is recorded as blocked.
    #[default]
    LogOnly,
    /// `1`: run the blocking actions (`KILL_HOSTS_DENY`, `KILL_ROUTE`, and `KILL_RUN_CMD`).
    Block,
    /// `2`: run `KILL_RUN_CMD` only.
    RunCommandOnly,
}

/// The line format of `HISTORY_FILE` (new key `HISTORY_FORMAT`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum HistoryFormat {
    /// PortSentry 1.2: `<epoch> - MM/DD/YYYY HH:MM:SS Host: name/ip Port: N TCP Blocked`.
    #[default]
    Classic,
    /// PortSentry 2.0: `<iso time> Scan from: [ip] (name) protocol: [TCP] ...`.
    V2,
    /// One JSON object per line.
    Json,
}

/// A validated configuration. Every field has the value that takes effect
/// (defaults filled in), so consumers never re-interpret strings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// `TCP_PORTS`: ports watched in the tcp and stcp modes.
    pub tcp_ports: PortSet,
    /// `UDP_PORTS`: ports watched in the udp and sudp modes.
    pub udp_ports: PortSet,
    /// `ADVANCED_PORTS_TCP`: atcp watches every port below this (default 1024).
    pub advanced_ports_tcp: u16,
    /// `ADVANCED_PORTS_UDP`: audp watches every port below this (default 1024).
    pub advanced_ports_udp: u16,
    /// `ADVANCED_EXCLUDE_TCP`: ports never watched in atcp.
    pub advanced_exclude_tcp: PortSet,
    /// `ADVANCED_EXCLUDE_UDP`: ports never watched in audp.
    pub advanced_exclude_udp: PortSet,
    /// `IGNORE_FILE`: the never-block list, if any.
    pub ignore_file: Option<PathBuf>,
    /// `HISTORY_FILE`: the append-only record of alerts, if any.
    pub history_file: Option<PathBuf>,
    /// `HISTORY_FORMAT` (new): the line format of the history file.
    pub history_format: HistoryFormat,
    /// `BLOCKED_FILE`: the persistent block table, if any.
    pub blocked_file: Option<PathBuf>,
    /// `RESOLVE_HOST`: resolve scanner names for display (never for commands).
    pub resolve_host: bool,
    /// `BLOCK_TCP`.
    pub block_tcp: BlockMode,
    /// `BLOCK_UDP`.
    pub block_udp: BlockMode,
    /// `KILL_ROUTE`: shell command template; contains `$TARGET$`.
    pub kill_route: Option<String>,
    /// `KILL_HOSTS_DENY`: hosts.deny line template; contains `$TARGET$`.
    pub kill_hosts_deny: Option<String>,
    /// `KILL_RUN_CMD`: shell command template.
    pub kill_run_cmd: Option<String>,
    /// `KILL_RUN_CMD_FIRST`: run `KILL_RUN_CMD` before the other actions.
    pub kill_run_cmd_first: bool,
    /// `UNBLOCK_CMD` (new): shell command template run when a block is released.
    pub unblock_cmd: Option<String>,
    /// `HOSTS_DENY_FILE` (new): where `KILL_HOSTS_DENY` lines go (default `/etc/hosts.deny`).
    pub hosts_deny_file: PathBuf,
    /// `SCAN_TRIGGER`: 0 and 1 alarm on the first probe; N alarms on the Nth distinct port.
    pub scan_trigger: u32,
    /// `SCAN_WINDOW` (new): how long a source's probes are remembered.
    pub scan_window: Duration,
    /// `MAX_TRACKED_SOURCES` (new): memory bound of the tracker.
    pub max_tracked_sources: usize,
    /// `BLOCK_TIMEOUT` (new): how long a block lasts; `None` means forever (value 0).
    pub block_timeout: Option<Duration>,
    /// `DETECT_ACK_SCANS` (new): count bare-ACK and FIN+ACK probes.
    pub detect_ack_scans: bool,
    /// `NEVER_BLOCK_GATEWAYS` (new): never block the default gateways and resolvers.
    pub never_block_infrastructure: bool,
    /// `NFT_SET` (new): the nftables set that blocked addresses are added to, as
    /// `"FAMILY TABLE SET"` (e.g. `"inet portsentry blocked"`); `None` disables it.
    pub nft_set: Option<String>,
    /// `PORT_BANNER`: text sent to connect-mode clients.
    pub port_banner: Option<String>,
    /// `CROWDSEC_CREDENTIALS` (new): a CrowdSec machine credentials file (`url`, `login`,
    /// `password`); blocks are pushed to that Local API as decisions. `None` disables it.
    pub crowdsec_credentials: Option<PathBuf>,
    /// `PROBE_EVENTS` (new): at most this many `probe:` lines per second, for a source's
    /// first port below the trigger (fleet-wide horizontal-scan detection); 0 is off.
    pub probe_events_per_second: u32,
    /// `MAX_BLOCKS` (new): at most this many hosts blocked (or being blocked) at once.
    pub max_blocks: usize,
    /// `BLOCK_RATE` (new): at most this many new blocks a minute; 0 means no rate limit.
    pub block_rate: u32,
    /// `RECONCILE_INTERVAL` (new): how often the firewall is made to match the block table
    /// again; `None` (value 0): only at start and after a reload.
    pub reconcile_interval: Option<Duration>,
    /// `STOP_TIMEOUT` (new): how long a stop waits for queued block actions before it leaves
    /// them pending in the block table for the next start.
    pub stop_timeout: Duration,
    /// `CONTROL_GROUP` (new): members of this group (name or number) may use the control
    /// socket besides root; `None`: root only.
    pub control_group: Option<String>,
}

/// The default of `RECONCILE_INTERVAL`.
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(60);
/// The default of `STOP_TIMEOUT`.
pub const DEFAULT_STOP_TIMEOUT: Duration = Duration::from_secs(10);

/// PortSentry's classic "aware" TCP port list (Debian's sample file).
pub const CLASSIC_TCP_PORTS: &str = "1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320";
/// PortSentry's classic "aware" UDP port list (Debian's sample file).
pub const CLASSIC_UDP_PORTS: &str = "1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321";

pub use error::{ConfigError, ConfigProblem, ConfigWarning, ProblemKind, WarningKind};
pub use state_dir::{choose_state_directory, running_as_root, state_directory};

/// The embedded default configuration text: classic port lists, log only, state files in the
/// state directory. [`Config::default`] is exactly this text parsed.
pub const DEFAULT_CONF: &str = include_str!("default.conf");

/// The name the embedded default carries in messages.
pub const DEFAULT_ORIGIN: &str = "<built-in default>";

/// A configuration that loaded, with the warnings found on the way.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The validated configuration.
    pub config: Config,
    /// Unknown keys, duplicates and settings without effect, in line order.
    pub warnings: Vec<ConfigWarning>,
}

impl BlockMode {
    /// The value as written in the file: `0`, `1` or `2`.
    pub const fn as_digit(self) -> u8 {
        match self {
            Self::LogOnly => 0,
            Self::Block => 1,
            Self::RunCommandOnly => 2,
        }
    }

    /// A short description: `log only`, `block`, `run KILL_RUN_CMD only`.
    pub const fn describe(self) -> &'static str {
        match self {
            Self::LogOnly => "log only",
            Self::Block => "block",
            Self::RunCommandOnly => "run KILL_RUN_CMD only",
        }
    }
}

impl HistoryFormat {
    /// The value as written in the file: `classic`, `v2` or `json`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Classic => "classic",
            Self::V2 => "v2",
            Self::Json => "json",
        }
    }
}

impl Config {
    /// Parses and validates configuration text. `origin` names the text in messages (usually
    /// the file name). Pure: no file is read, nothing is created.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Invalid`] with every problem of the text (syntax errors, bad values,
    /// inconsistent `BLOCK_*` settings), each naming origin, line and key.
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::Config;
    /// let loaded = Config::parse_str("TCP_PORTS=\"1\"\nTCP_PORTS=\"2\"\n", "a.conf").unwrap();
    /// assert!(loaded.config.tcp_ports.contains(2));
    /// assert_eq!(
    ///     loaded.warnings[0].to_string(),
    ///     "a.conf:2: TCP_PORTS: set again: this line overrides line 1 (the last one wins)"
    /// );
    /// ```
    pub fn parse_str(text: &str, origin: &str) -> Result<Loaded, ConfigError> {
        let file = conf_file::parse(text);
        let outcome = validate::validate(&file, origin);
        match outcome.config {
            Ok(config) => Ok(Loaded {
                config,
                warnings: outcome.warnings,
            }),
            Err(problems) => Err(ConfigError::Invalid {
                file: origin.to_owned(),
                problems,
                warnings: outcome.warnings,
            }),
        }
    }

    /// Reads, parses and validates the file at `path`. Nothing else is read or created (the
    /// ignore file, the history file... are the business of their users). Relative
    /// `IGNORE_FILE`, `HOSTS_DENY_FILE` and `CROWDSEC_CREDENTIALS` paths are made relative to
    /// the file's directory.
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read; [`ConfigError::TooLarge`] above
    /// 1 MiB; [`ConfigError::Invalid`] with every
    /// problem of the file otherwise (bytes that are not UTF-8 are an error inside a value and
    /// ignored in comments, which older files write in Latin-1).
    pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
        Self::load_checked(path).map(|(loaded, _)| loaded)
    }

    /// As [`Config::load`], with the permission findings of the file's whole path: the file
    /// is opened once, at most [`MAX_INPUT_BYTES`](permissions::MAX_INPUT_BYTES) (1 MiB) are
    /// read from that descriptor, and the path is checked against what was read
    /// ([`permissions::read_checked`]). A caller running as root must take no root action
    /// the file controls while there is a finding ([`permissions::disarm`]).
    ///
    /// # Errors
    ///
    /// [`ConfigError::Read`] when the file cannot be read, [`ConfigError::TooLarge`] above
    /// the limit, [`ConfigError::Invalid`] as [`Config::load`].
    pub fn load_checked(
        path: impl AsRef<Path>,
    ) -> Result<(Loaded, Vec<PermissionFinding>), ConfigError> {
        let path = path.as_ref();
        let file =
            permissions::read_checked(path, permissions::MAX_INPUT_BYTES).map_err(|error| {
                match error {
                    ReadError::TooLarge { limit, .. } => ConfigError::TooLarge {
                        path: path.to_owned(),
                        limit,
                    },
                    ReadError::Io { source, .. } => ConfigError::Read {
                        path: path.to_owned(),
                        source,
                    },
                }
            })?;
        let bytes = file.bytes;
        // Old files may carry Latin-1 comments: decode leniently, then refuse only values
        // that held bytes which are not UTF-8 (a comment's bytes do not matter).
        let text = String::from_utf8_lossy(&bytes);
        let origin = path.display().to_string();
        let mut loaded = match Self::parse_str(&text, &origin) {
            Ok(loaded) if !text.contains('\u{FFFD}') => loaded,
            result => undecodable_values(result, &text, &origin)?,
        };
        let base = path.parent().unwrap_or_else(|| Path::new(""));
        let config = &mut loaded.config;
        if let Some(ignore) = &config.ignore_file
            && ignore.is_relative()
        {
            config.ignore_file = Some(base.join(ignore));
        }
        if config.hosts_deny_file.is_relative() {
            config.hosts_deny_file = base.join(&config.hosts_deny_file);
        }
        if let Some(credentials) = &config.crowdsec_credentials
            && credentials.is_relative()
        {
            config.crowdsec_credentials = Some(base.join(credentials));
        }
        Ok((loaded, file.findings))
    }

    /// Makes relative `HISTORY_FILE` and `BLOCKED_FILE` paths relative to `state_dir`
    /// (normally [`state_directory()`]). Absolute paths are left alone.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::path::Path;
    /// let mut config = portsentry_core::Config::default();
    /// config.resolve_state_paths(Path::new("/var/lib/portsentry"));
    /// assert_eq!(
    ///     config.history_file.as_deref(),
    ///     Some(Path::new("/var/lib/portsentry/portsentry.history"))
    /// );
    /// ```
    pub fn resolve_state_paths(&mut self, state_dir: &Path) {
        for file in [&mut self.history_file, &mut self.blocked_file]
            .into_iter()
            .flatten()
        {
            if file.is_relative() {
                *file = state_dir.join(&*file);
            }
        }
    }

    /// The configuration of a file without any line: PortSentry's values for absent keys.
    fn absent() -> Self {
        Self {
            tcp_ports: PortSet::new(),
            udp_ports: PortSet::new(),
            advanced_ports_tcp: 1024,
            advanced_ports_udp: 1024,
            advanced_exclude_tcp: PortSet::new(),
            advanced_exclude_udp: PortSet::new(),
            ignore_file: None,
            history_file: None,
            history_format: HistoryFormat::Classic,
            blocked_file: None,
            resolve_host: false,
            block_tcp: BlockMode::LogOnly,
            block_udp: BlockMode::LogOnly,
            kill_route: None,
            kill_hosts_deny: None,
            kill_run_cmd: None,
            kill_run_cmd_first: false,
            unblock_cmd: None,
            hosts_deny_file: PathBuf::from("/etc/hosts.deny"),
            scan_trigger: 0,
            scan_window: Duration::from_secs(300),
            max_tracked_sources: 65_536,
            block_timeout: None,
            detect_ack_scans: false,
            never_block_infrastructure: true,
            nft_set: None,
            port_banner: None,
            crowdsec_credentials: None,
            probe_events_per_second: 0,
            max_blocks: crate::block_limits::DEFAULT_MAX_BLOCKS,
            block_rate: crate::block_limits::DEFAULT_BLOCK_RATE,
            reconcile_interval: Some(DEFAULT_RECONCILE_INTERVAL),
            stop_timeout: DEFAULT_STOP_TIMEOUT,
            control_group: None,
        }
    }
}

/// Adds an error for every value holding U+FFFD (bytes that were not UTF-8) to `result`.
fn undecodable_values(
    result: Result<Loaded, ConfigError>,
    text: &str,
    origin: &str,
) -> Result<Loaded, ConfigError> {
    let bad: Vec<ConfigProblem> = conf_file::parse(text)
        .entries
        .into_iter()
        .filter(|entry| entry.value.contains('\u{FFFD}'))
        .map(|entry| crate::located::Located {
            file: origin.to_owned(),
            line: Some(entry.line),
            key: Some(entry.key.to_owned()),
            kind: ProblemKind::NotUtf8,
        })
        .collect();
    if bad.is_empty() {
        // U+FFFD only in comments (or in lines already reported): nothing to add.
        return result;
    }
    let (mut problems, warnings) = match result {
        Ok(loaded) => (Vec::new(), loaded.warnings),
        Err(ConfigError::Invalid {
            problems, warnings, ..
        }) => (problems, warnings),
        Err(other) => return Err(other),
    };
    problems.extend(bad);
    problems.sort_by_key(|p| p.line);
    Err(ConfigError::Invalid {
        file: origin.to_owned(),
        problems,
        warnings,
    })
}

impl Default for Config {
    /// The embedded default ([`DEFAULT_CONF`]): classic port lists, log only, history and
    /// blocked files with relative paths (see [`Config::resolve_state_paths`]).
    ///
    /// # Panics
    ///
    /// Never: a unit test proves that the embedded text parses without error or warning.
    fn default() -> Self {
        match Self::parse_str(DEFAULT_CONF, DEFAULT_ORIGIN) {
            Ok(loaded) => loaded.config,
            Err(err) => panic!("the embedded default configuration is invalid: {err}"),
        }
    }
}

impl std::str::FromStr for Config {
    type Err = ConfigError;

    /// Parses configuration text (warnings are dropped; use [`Config::parse_str`] to see them).
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse_str(text, "<string>").map(|loaded| loaded.config)
    }
}

#[cfg(test)]
mod tests;
