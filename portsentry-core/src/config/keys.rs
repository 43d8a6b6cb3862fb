//! The table of every `portsentry.conf` key this crate understands.

/// Which configuration dialect a key comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum KeyOrigin {
    /// Understood by both PortSentry 1.2 and 2.0.
    Both,
    /// PortSentry 1.2 only (2.0 refuses to start on it).
    Classic,
    /// Added by this implementation.
    New,
}

impl KeyOrigin {
    /// `1.2+2.0`, `1.2` or `new`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Both => "1.2+2.0",
            Self::Classic => "1.2",
            Self::New => "new",
        }
    }
}

/// One known key: its name, its origin and a one-line description of its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyInfo {
    /// The exact key name (keys are case-sensitive).
    pub name: &'static str,
    /// Where the key comes from.
    pub origin: KeyOrigin,
    /// What the value is, in a few words.
    pub value: &'static str,
}

const fn key(name: &'static str, origin: KeyOrigin, value: &'static str) -> KeyInfo {
    KeyInfo {
        name,
        origin,
        value,
    }
}

/// Every known key, in the order the documentation lists them.
pub const KEYS: &[KeyInfo] = &[
    key(
        "TCP_PORTS",
        KeyOrigin::Both,
        "port list, e.g. \"1,11,512-515\"",
    ),
    key("UDP_PORTS", KeyOrigin::Both, "port list"),
    key(
        "ADVANCED_PORTS_TCP",
        KeyOrigin::Classic,
        "1-65535: atcp watches ports below it",
    ),
    key(
        "ADVANCED_PORTS_UDP",
        KeyOrigin::Classic,
        "1-65535: audp watches ports below it",
    ),
    key(
        "ADVANCED_EXCLUDE_TCP",
        KeyOrigin::Classic,
        "port list (may be empty)",
    ),
    key(
        "ADVANCED_EXCLUDE_UDP",
        KeyOrigin::Classic,
        "port list (may be empty)",
    ),
    key("IGNORE_FILE", KeyOrigin::Both, "path (empty: none)"),
    key("HISTORY_FILE", KeyOrigin::Both, "path (empty: none)"),
    key("BLOCKED_FILE", KeyOrigin::Both, "path (empty: none)"),
    key("RESOLVE_HOST", KeyOrigin::Both, "0 or 1"),
    key(
        "BLOCK_TCP",
        KeyOrigin::Both,
        "0 log only, 1 block, 2 KILL_RUN_CMD only",
    ),
    key(
        "BLOCK_UDP",
        KeyOrigin::Both,
        "0 log only, 1 block, 2 KILL_RUN_CMD only",
    ),
    key(
        "KILL_ROUTE",
        KeyOrigin::Both,
        "shell command containing $TARGET$",
    ),
    key(
        "KILL_HOSTS_DENY",
        KeyOrigin::Both,
        "hosts.deny line containing $TARGET$",
    ),
    key("KILL_RUN_CMD", KeyOrigin::Both, "shell command"),
    key("KILL_RUN_CMD_FIRST", KeyOrigin::Both, "0 or 1"),
    key("SCAN_TRIGGER", KeyOrigin::Both, "0-64"),
    key("PORT_BANNER", KeyOrigin::Both, "text (empty: none)"),
    key("HISTORY_FORMAT", KeyOrigin::New, "classic, v2 or json"),
    key("UNBLOCK_CMD", KeyOrigin::New, "shell command"),
    key("HOSTS_DENY_FILE", KeyOrigin::New, "path"),
    key("SCAN_WINDOW", KeyOrigin::New, "seconds, 1-604800"),
    key("MAX_TRACKED_SOURCES", KeyOrigin::New, "1-16777216"),
    key(
        "BLOCK_TIMEOUT",
        KeyOrigin::New,
        "seconds, 0 (never) to 315360000",
    ),
    key("DETECT_ACK_SCANS", KeyOrigin::New, "0 or 1"),
    key("NEVER_BLOCK_GATEWAYS", KeyOrigin::New, "0 or 1"),
    key(
        "NFT_SET",
        KeyOrigin::New,
        "\"FAMILY TABLE SET\" (empty: none)",
    ),
    key(
        "CROWDSEC_CREDENTIALS",
        KeyOrigin::New,
        "path of a cscli machine credentials file (empty: none)",
    ),
    key(
        "PROBE_EVENTS",
        KeyOrigin::New,
        "0-10000 probe lines per second (0: off)",
    ),
    key(
        "MAX_BLOCKS",
        KeyOrigin::New,
        "1-1048576 hosts blocked at once",
    ),
    key(
        "BLOCK_RATE",
        KeyOrigin::New,
        "new blocks per minute, 0 (no limit) to 1000000",
    ),
    key(
        "RECONCILE_INTERVAL",
        KeyOrigin::New,
        "seconds, 0 (start and reload only) to 86400",
    ),
    key("STOP_TIMEOUT", KeyOrigin::New, "seconds, 1-3600"),
    key(
        "CONTROL_GROUP",
        KeyOrigin::New,
        "group name or number allowed on the control socket (empty: root only)",
    ),
];

/// The entry of [`KEYS`] named exactly `name`.
pub fn lookup(name: &str) -> Option<&'static KeyInfo> {
    KEYS.iter().find(|k| k.name == name)
}

/// A known key that `unknown` was probably meant to be: same letters in another case, or a
/// prefix of exactly one known key (PortSentry 2.0 accepted prefixes such as `BLOCK`).
pub fn suggest(unknown: &str) -> Option<&'static str> {
    if let Some(k) = KEYS.iter().find(|k| k.name.eq_ignore_ascii_case(unknown)) {
        return Some(k.name);
    }
    let mut prefixed = KEYS
        .iter()
        .filter(|k| !unknown.is_empty() && k.name.starts_with(unknown));
    match (prefixed.next(), prefixed.next()) {
        (Some(k), None) => Some(k.name),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_unique_and_well_formed() {
        for (i, a) in KEYS.iter().enumerate() {
            assert!(a.name.bytes().all(|b| b.is_ascii_uppercase() || b == b'_'));
            assert!(KEYS[i + 1..].iter().all(|b| b.name != a.name), "{}", a.name);
        }
        assert_eq!(KEYS.len(), 34);
    }

    #[test]
    fn suggestions() {
        assert_eq!(suggest("tcp_ports"), Some("TCP_PORTS"));
        assert_eq!(suggest("SCAN_TRIG"), Some("SCAN_TRIGGER"));
        assert_eq!(suggest("BLOCK"), None);
        assert_eq!(suggest("BLOCK_TC"), Some("BLOCK_TCP"));
        assert_eq!(suggest("FOO"), None);
        assert_eq!(lookup("BLOCK"), None);
        assert_eq!(lookup("BLOCK_TCP").map(|k| k.origin), Some(KeyOrigin::Both));
    }
}
