//! `portsentry.conf`: both PortSentry dialects, parsed and validated into a typed [`Config`].
//!
//! PARSING IS NOT WRITTEN YET: this file fixes the shape of [`Config`] so that the
//! detector and the responders can be written against it in parallel.

use std::path::PathBuf;
use std::time::Duration;

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
#[derive(Debug, Clone)]
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
}

/// PortSentry's classic "aware" TCP port list (Debian's sample file).
pub const CLASSIC_TCP_PORTS: &str = "1,11,15,79,111,119,143,540,635,1080,1524,2000,5742,6667,12345,12346,20034,27665,31337,32771,32772,32773,32774,40421,49724,54320";
/// PortSentry's classic "aware" UDP port list (Debian's sample file).
pub const CLASSIC_UDP_PORTS: &str = "1,7,9,69,161,162,513,635,640,641,700,37444,34555,31335,32770,32771,32772,32773,32774,31337,54321";

impl Default for Config {
    /// The embedded default: classic port lists, log only, no state files.
    fn default() -> Self {
        let list = |s: &str| {
            s.split(',')
                .filter_map(|p| p.parse::<u16>().ok())
                .collect::<PortSet>()
        };
        Self {
            tcp_ports: list(CLASSIC_TCP_PORTS),
            udp_ports: list(CLASSIC_UDP_PORTS),
            advanced_ports_tcp: 1024,
            advanced_ports_udp: 1024,
            advanced_exclude_tcp: list("113,139"),
            advanced_exclude_udp: list("520,138,137,67"),
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
        }
    }
}
