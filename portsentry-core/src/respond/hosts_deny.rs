//! `KILL_HOSTS_DENY`: the TCP-wrappers line, added once per host and removed on release.
//!
//! The line is the `KILL_HOSTS_DENY` template with `$TARGET$`, `$PORT$` and `$MODE$`
//! substituted (see [`command`](super::command)), the target in tcp_wrappers' own syntax
//! (an IPv6 address in brackets: [`wrappers_address`]); nothing else is interpreted, so
//! tcpd's `\%` escapes stay as written. The file (`HOSTS_DENY_FILE`, default `/etc/hosts.deny`):
//!
//! * is refused when it is a symlink (checked with `lstat`), not a regular file, or
//!   world-writable: a local user could otherwise redirect or forge our writes;
//! * is created (mode 0644) when missing;
//! * gets a line only if an identical line is not already there;
//! * is replaced atomically ([`write_atomic`]), never through a link, keeping its mode only
//!   when it is our own file.
//!
//! On release, every line that the template could have produced for that address (any
//! port, any mode) is removed, so releases work across restarts without remembering which
//! line was written.

use std::fs;
use std::io;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use super::blocked_file::{read_if_exists, write_atomic};
use super::command::{Tokens, substitute};
use super::{Action, AlertContext, Outcome, ReleaseContext, Responder, ResponderError, Role, Step};
use crate::config::BlockMode;
use crate::mode::Mode;

/// Edits a hosts.deny file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostsDeny {
    path: PathBuf,
    template: String,
}

/// What [`HostsDeny::add`] did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added {
    /// The line was appended.
    Appended(String),
    /// An identical line was already present; the file was not touched.
    AlreadyPresent(String),
}

impl Added {
    /// The line, either way.
    pub fn line(&self) -> &str {
        match self {
            Self::Appended(l) | Self::AlreadyPresent(l) => l,
        }
    }
}

impl HostsDeny {
    /// A hosts.deny editor for `path` with the `KILL_HOSTS_DENY` `template`.
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when the template lacks `$TARGET$` (it would deny the same
    /// fixed line for everyone) or spans several lines.
    pub fn new(
        path: impl Into<PathBuf>,
        template: impl Into<String>,
    ) -> Result<Self, ResponderError> {
        let template = template.into();
        if !template.contains("$TARGET$") {
            return Err(ResponderError::Config(
                "KILL_HOSTS_DENY must contain $TARGET$".to_owned(),
            ));
        }
        if template.contains('\n') || template.contains('\r') {
            return Err(ResponderError::Config(
                "KILL_HOSTS_DENY must be a single line".to_owned(),
            ));
        }
        Ok(Self {
            path: path.into(),
            template,
        })
    }

    /// The file edited.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The line for these tokens: `$TARGET$` in tcp_wrappers' own syntax (an IPv6 address
    /// in brackets, [`wrappers_address`]).
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::respond::command::Tokens;
    /// use portsentry_core::respond::hosts_deny::HostsDeny;
    /// let deny = HostsDeny::new("/etc/hosts.deny", "ALL: $TARGET$ : DENY").unwrap();
    /// let tokens = |a: &str| Tokens { target: a.parse().unwrap(), port: None, mode: None };
    /// assert_eq!(deny.line(&tokens("2001:db8::9")), "ALL: [2001:db8::9] : DENY");
    /// assert_eq!(deny.line(&tokens("203.0.113.9")), "ALL: 203.0.113.9 : DENY");
    /// ```
    pub fn line(&self, tokens: &Tokens) -> String {
        substitute(&fill_target(&self.template, tokens.target), tokens)
    }

    /// Adds the line for `tokens` unless it is already present.
    ///
    /// # Errors
    ///
    /// [`ResponderError::UnsafeFile`] for a symlinked, non-regular or world-writable file;
    /// [`ResponderError::Io`] when reading or writing fails (the file is then unchanged).
    pub fn add(&self, tokens: &Tokens) -> Result<Added, ResponderError> {
        let line = self.line(tokens);
        let current = self.read_checked()?.unwrap_or_default();
        if current.lines().any(|l| l == line) {
            return Ok(Added::AlreadyPresent(line));
        }
        let mut next = current;
        if !next.is_empty() && !next.ends_with('\n') {
            next.push('\n');
        }
        next.push_str(&line);
        next.push('\n');
        write_atomic(&self.path, &next)?;
        Ok(Added::Appended(line))
    }

    /// Removes every line the template produces for `address` (any port, any mode); returns
    /// how many were removed.
    ///
    /// # Errors
    ///
    /// As [`HostsDeny::add`].
    pub fn remove(&self, address: IpAddr) -> Result<usize, ResponderError> {
        let Some(current) = self.read_checked()? else {
            return Ok(0);
        };
        // Lines written in tcp_wrappers' syntax, and the unbracketed IPv6 lines older
        // versions wrote (which never blocked anything).
        let bracketed = self.template.replace("[$TARGET$]", "$TARGET$");
        let (wrappers, plain) = (wrappers_address(address), super::address_text(address));
        let mut removed = 0;
        let mut next = String::with_capacity(current.len());
        for line in current.split_inclusive('\n') {
            let bare = line.strip_suffix('\n').unwrap_or(line);
            if template_matches(&bracketed, &wrappers, bare)
                || template_matches(&self.template, &plain, bare)
            {
                removed += 1;
            } else {
                next.push_str(line);
            }
        }
        if removed > 0 {
            write_atomic(&self.path, &next)?;
        }
        Ok(removed)
    }

    /// Removes the lines the template produced for addresses that `keep` refuses (lines
    /// portsentry wrote for blocks its table no longer knows); returns those addresses.
    /// Lines the template cannot have produced are never touched.
    ///
    /// # Errors
    ///
    /// As [`HostsDeny::add`].
    pub fn prune(&self, keep: &dyn Fn(IpAddr) -> bool) -> Result<Vec<IpAddr>, ResponderError> {
        let Some(current) = self.read_checked()? else {
            return Ok(Vec::new());
        };
        let mut stray = Vec::new();
        let mut next = String::with_capacity(current.len());
        for line in current.split_inclusive('\n') {
            let bare = line.strip_suffix('\n').unwrap_or(line);
            match self.address_of(bare) {
                Some(address) if !keep(address) => stray.push(address),
                _ => next.push_str(line),
            }
        }
        if !stray.is_empty() {
            write_atomic(&self.path, &next)?;
        }
        Ok(stray)
    }

    /// The address whose line `line` is, if the template produced it.
    fn address_of(&self, line: &str) -> Option<IpAddr> {
        line.split(|c: char| c.is_whitespace() || c == ',')
            .map(|word| word.trim_matches(|c| c == '[' || c == ']'))
            .filter_map(|word| word.parse::<IpAddr>().ok())
            .find(|&ip| template_matches(&self.template, &super::address_text(ip), line))
    }

    /// Reads the file after the safety checks; `None` when it does not exist.
    fn read_checked(&self) -> Result<Option<String>, ResponderError> {
        match fs::symlink_metadata(&self.path) {
            Ok(meta) => {
                let unsafe_file = |reason| ResponderError::UnsafeFile {
                    path: self.path.clone(),
                    reason,
                };
                if meta.file_type().is_symlink() {
                    return Err(unsafe_file("it is a symbolic link"));
                }
                if !meta.is_file() {
                    return Err(unsafe_file("it is not a regular file"));
                }
                if meta.permissions().mode() & 0o002 != 0 {
                    return Err(unsafe_file("it is world-writable"));
                }
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
            Err(source) => {
                return Err(ResponderError::Io {
                    path: self.path.clone(),
                    source,
                });
            }
        }
        read_if_exists(&self.path)
    }
}

/// True when `line` is what `template` gives for `target` with some port (digits) and some
/// mode name in place of `$PORT$` and `$MODE$`.
fn template_matches(template: &str, target: &str, line: &str) -> bool {
    let filled = template.replace("$TARGET$", target);
    matches_from(&filled, line)
}

/// `address` as tcp_wrappers reads it in a host pattern: an IPv4 address as is, an IPv6
/// address in brackets (`[2001:db8::9]`; hosts_access(5): without brackets an IPv6 pattern
/// matches nothing, so the line would block nobody). IPv4-mapped addresses are IPv4.
pub fn wrappers_address(address: IpAddr) -> String {
    match address.to_canonical() {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => format!("[{v6}]"),
    }
}

/// `template` with `$TARGET$` filled in tcp_wrappers' syntax; a template that already
/// brackets it (`[$TARGET$]`) is not bracketed twice.
fn fill_target(template: &str, address: IpAddr) -> String {
    let text = wrappers_address(address);
    template
        .replace("[$TARGET$]", &text)
        .replace("$TARGET$", &text)
}

fn matches_from(pattern: &str, text: &str) -> bool {
    let port = pattern.find("$PORT$");
    let mode = pattern.find("$MODE$");
    let next = match (port, mode) {
        (None, None) => return pattern == text,
        (Some(p), None) => (p, true),
        (None, Some(m)) => (m, false),
        (Some(p), Some(m)) => {
            if p < m {
                (p, true)
            } else {
                (m, false)
            }
        }
    };
    let (at, is_port) = next;
    let (literal, rest) = (&pattern[..at], &pattern[at + 6..]);
    let Some(after) = text.strip_prefix(literal) else {
        return false;
    };
    if is_port {
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        // Try every split so a digit right after the token still matches.
        (1..=digits).any(|n| matches_from(rest, &after[n..]))
    } else {
        Mode::ALL.iter().any(|m| {
            after
                .strip_prefix(m.as_str())
                .is_some_and(|tail| matches_from(rest, tail))
        })
    }
}

impl Responder for HostsDeny {
    fn name(&self) -> &str {
        "hosts_deny"
    }

    fn role(&self) -> Role {
        Role::Block
    }

    /// Adds the line when the alert's block mode is `BLOCK_x=1`; skips otherwise.
    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        if ctx.alert.response != BlockMode::Block {
            return Ok(Outcome::Skipped);
        }
        let tokens = Tokens::of_alert(ctx.alert);
        let step = match self.add(&tokens) {
            Ok(added) => Step {
                action: Action::HostsDeny,
                detail: added.line().to_owned(),
                error: None,
            },
            Err(e) => Step {
                action: Action::HostsDeny,
                detail: self.line(&tokens),
                error: Some(e.to_string()),
            },
        };
        if step.succeeded() {
            Ok(Outcome::Acted(vec![step]))
        } else {
            Err(ResponderError::BlockFailed { steps: vec![step] })
        }
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        let address = ctx.release.address;
        let detail = self.path.display().to_string();
        match self.remove(address) {
            Ok(_) => Ok(Outcome::Acted(vec![Step {
                action: Action::HostsDenyRemove,
                detail,
                error: None,
            }])),
            Err(e) => Err(ResponderError::BlockFailed {
                steps: vec![Step {
                    action: Action::HostsDenyRemove,
                    detail,
                    error: Some(e.to_string()),
                }],
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn tokens(target: &str, port: u16, mode: Mode) -> Tokens {
        Tokens {
            target: target.parse().unwrap(),
            port: Some(port),
            mode: Some(mode),
        }
    }

    #[test]
    fn appends_once_and_keeps_other_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        fs::write(&path, "# existing\nsshd: 192.0.2.1").unwrap();
        let hd = HostsDeny::new(&path, "ALL: $TARGET$ : DENY").unwrap();
        let t = tokens("203.0.113.5", 11, Mode::StealthTcp);
        assert_eq!(
            hd.add(&t).unwrap(),
            Added::Appended("ALL: 203.0.113.5 : DENY".into())
        );
        assert_eq!(
            hd.add(&t).unwrap(),
            Added::AlreadyPresent("ALL: 203.0.113.5 : DENY".into())
        );
        hd.add(&tokens("2001:db8::5", 12, Mode::StealthTcp))
            .unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "# existing\nsshd: 192.0.2.1\nALL: 203.0.113.5 : DENY\nALL: [2001:db8::5] : DENY\n"
        );
    }

    #[test]
    fn release_removes_lines_for_any_port_and_mode_only_for_that_host() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        let hd = HostsDeny::new(&path, "ALL: $TARGET$ # $PORT$/$MODE$").unwrap();
        hd.add(&tokens("203.0.113.5", 11, Mode::StealthTcp))
            .unwrap();
        hd.add(&tokens("203.0.113.5", 31337, Mode::AdvancedUdp))
            .unwrap();
        hd.add(&tokens("203.0.113.55", 11, Mode::StealthTcp))
            .unwrap();
        assert_eq!(hd.remove("203.0.113.5".parse().unwrap()).unwrap(), 2);
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "ALL: 203.0.113.55 # 11/stcp\n"
        );
        assert_eq!(hd.remove("203.0.113.5".parse().unwrap()).unwrap(), 0);
    }

    #[test]
    fn percent_escapes_stay_verbatim() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        let hd = HostsDeny::new(&path, r"ALL: $TARGET$ : spawn /bin/echo \%h \%d").unwrap();
        hd.add(&tokens("203.0.113.5", 11, Mode::Tcp)).unwrap();
        assert_eq!(
            fs::read_to_string(&path).unwrap(),
            "ALL: 203.0.113.5 : spawn /bin/echo \\%h \\%d\n"
        );
        assert_eq!(hd.remove("203.0.113.5".parse().unwrap()).unwrap(), 1);
    }

    /// What tcp_wrappers itself decides for `client` with the `hosts.deny` (and an empty
    /// `hosts.allow`) in `dir`: `tcpdmatch -d` reads both from the current directory.
    fn tcpdmatch(dir: &Path, client: &str) -> Option<String> {
        let out = std::process::Command::new("tcpdmatch")
            .args(["-d", "sshd", client])
            .current_dir(dir)
            .output()
            .ok()?;
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        text.lines()
            .find_map(|l| l.strip_prefix("access:"))
            .map(|a| a.trim().to_owned())
    }

    /// The issue's reproduction: `ALL: 2001:db8::9 : DENY` (no brackets) was "granted" by
    /// tcp_wrappers, yet recorded as a block. Both families, checked by tcpdmatch.
    #[test]
    fn lines_block_in_tcp_wrappers_for_both_families() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join("hosts.allow"), "").unwrap();
        let hd = HostsDeny::new(dir.path().join("hosts.deny"), "ALL: $TARGET$ : DENY").unwrap();
        hd.add(&tokens("2001:db8::9", 11, Mode::StealthTcp))
            .unwrap();
        hd.add(&tokens("::ffff:203.0.113.9", 11, Mode::StealthTcp))
            .unwrap();
        let Some(v6) = tcpdmatch(dir.path(), "2001:db8::9") else {
            eprintln!("skipped: tcpdmatch (Debian package tcpd) is not installed");
            return;
        };
        assert_eq!(v6, "denied");
        assert_eq!(tcpdmatch(dir.path(), "203.0.113.9").unwrap(), "denied");
        assert_eq!(tcpdmatch(dir.path(), "2001:db8::8").unwrap(), "granted");
        assert_eq!(tcpdmatch(dir.path(), "203.0.113.8").unwrap(), "granted");
        // Release removes the bracketed line, and an unbracketed one an older version wrote.
        let mut text = fs::read_to_string(hd.path()).unwrap();
        text.push_str("ALL: 2001:db8::9 : DENY\n");
        fs::write(hd.path(), text).unwrap();
        assert_eq!(hd.remove("2001:db8::9".parse().unwrap()).unwrap(), 2);
        assert_eq!(tcpdmatch(dir.path(), "2001:db8::9").unwrap(), "granted");
        assert_eq!(
            fs::read_to_string(hd.path()).unwrap(),
            "ALL: 203.0.113.9 : DENY\n"
        );
        // A template that brackets the target itself is not bracketed twice.
        let own = HostsDeny::new(dir.path().join("other"), "ALL: [$TARGET$]").unwrap();
        assert_eq!(
            own.line(&tokens("2001:db8::9", 1, Mode::Tcp)),
            "ALL: [2001:db8::9]"
        );
    }

    #[test]
    fn refuses_symlink_and_world_writable() {
        let dir = tempfile::tempdir().unwrap();
        let real = dir.path().join("real");
        fs::write(&real, "").unwrap();
        let link = dir.path().join("hosts.deny");
        symlink(&real, &link).unwrap();
        let hd = HostsDeny::new(&link, "ALL: $TARGET$").unwrap();
        let err = hd.add(&tokens("203.0.113.5", 11, Mode::Tcp)).unwrap_err();
        assert!(err.to_string().contains("symbolic link"), "{err}");
        assert_eq!(fs::read_to_string(&real).unwrap(), "");

        fs::set_permissions(&real, fs::Permissions::from_mode(0o666)).unwrap();
        let hd = HostsDeny::new(&real, "ALL: $TARGET$").unwrap();
        let err = hd.add(&tokens("203.0.113.5", 11, Mode::Tcp)).unwrap_err();
        assert!(err.to_string().contains("world-writable"), "{err}");
    }

    #[test]
    fn keeps_mode_of_existing_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("hosts.deny");
        fs::write(&path, "").unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o600)).unwrap();
        HostsDeny::new(&path, "ALL: $TARGET$")
            .unwrap()
            .add(&tokens("203.0.113.5", 11, Mode::Tcp))
            .unwrap();
        assert_eq!(
            fs::metadata(&path).unwrap().permissions().mode() & 0o777,
            0o600
        );
    }

    #[test]
    fn template_without_target_is_rejected() {
        assert!(HostsDeny::new("/tmp/x", "ALL: everyone").is_err());
    }

    #[test]
    fn matcher_cases() {
        assert!(template_matches(
            "A $TARGET$ $PORT$$MODE$",
            "1.2.3.4",
            "A 1.2.3.4 11stcp"
        ));
        assert!(template_matches(
            "A $TARGET$ $PORT$1",
            "1.2.3.4",
            "A 1.2.3.4 111"
        ));
        assert!(!template_matches(
            "A $TARGET$ $PORT$",
            "1.2.3.4",
            "A 1.2.3.4 x"
        ));
        assert!(!template_matches("A $TARGET$", "1.2.3.4", "A 1.2.3.45"));
        assert!(template_matches(
            "A $TARGET$ [$MODE$]",
            "::1",
            "A ::1 [audp]"
        ));
    }
}
