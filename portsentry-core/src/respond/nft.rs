//! `NFT_SET`: block by adding the address to an nftables set, with a timeout.
//!
//! `NFT_SET="FAMILY TABLE SET"` names the table and the base name of the sets. IPv4
//! addresses go to `SET4`, IPv6 addresses to `SET6` (an nftables set holds one address
//! type), so `NFT_SET="inet portsentry blocked"` uses `blocked4` and `blocked6`, as
//! `contrib/nftables/portsentry.nft` declares them. With family `ip` only IPv4 addresses can
//! be blocked, with `ip6` only IPv6 ones; blocking the other kind is a failed block.
//!
//! The responder runs `nft add element FAMILY TABLE SET4 { ADDR timeout Ns }` as an argument
//! vector (no shell; the address is the numeric text, never a name). The timeout is
//! `BLOCK_TIMEOUT` (none when blocks never expire), so the kernel expires the element by
//! itself. On release it deletes the element; an element that already timed out counts as
//! removed. It acts only for `BLOCK_x=1` alerts.
//!
//! The program is `nft` by default; [`NftSet::with_program`] runs it through a prefix such
//! as `ip netns exec NAME nft` (the tests do that inside a network namespace).

use std::net::IpAddr;
use std::time::Duration;

use super::command::{self, run_argv};
use super::{
    Action, AlertContext, Outcome, ReapplyContext, ReleaseContext, Responder, ResponderError, Role,
    Step, address_text,
};
use crate::config::{BlockMode, Config};

/// Adds blocked addresses to nftables sets; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NftSet {
    program: Vec<String>,
    family: String,
    table: String,
    set: String,
    element_timeout: Option<Duration>,
    command_timeout: Duration,
}

const FAMILIES: [&str; 6] = ["inet", "ip", "ip6", "bridge", "netdev", "arp"];

fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.')
}

impl NftSet {
    /// A responder for `spec` (`"FAMILY TABLE SET"`); elements get `element_timeout`
    /// (`None`: no timeout).
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when `spec` is not three words, the family is unknown, or
    /// a name has characters nftables does not accept.
    ///
    /// # Examples
    ///
    /// ```
    /// use std::time::Duration;
    /// use portsentry_core::respond::NftSet;
    /// let nft = NftSet::new("inet portsentry blocked", Some(Duration::from_secs(3600))).unwrap();
    /// assert_eq!(
    ///     nft.add_argv("203.0.113.7".parse().unwrap()).unwrap(),
    ///     ["nft", "add", "element", "inet", "portsentry", "blocked4", "{ 203.0.113.7 timeout 3600s }"]
    /// );
    /// assert_eq!(nft.set_for("2001:db8::1".parse().unwrap()).unwrap(), "blocked6");
    /// ```
    pub fn new(spec: &str, element_timeout: Option<Duration>) -> Result<Self, ResponderError> {
        let words: Vec<&str> = spec.split_whitespace().collect();
        let [family, table, set] = words.as_slice() else {
            return Err(ResponderError::Config(format!(
                "NFT_SET must be \"FAMILY TABLE SET\", got {spec:?}"
            )));
        };
        if !FAMILIES.contains(family) {
            return Err(ResponderError::Config(format!(
                "NFT_SET: unknown family {family:?} (expected one of {})",
                FAMILIES.join(", ")
            )));
        }
        for name in [table, set] {
            if !valid_name(name) {
                return Err(ResponderError::Config(format!(
                    "NFT_SET: {name:?} is not a valid nftables name"
                )));
            }
        }
        Ok(Self {
            program: vec!["nft".to_owned()],
            family: (*family).to_owned(),
            table: (*table).to_owned(),
            set: (*set).to_owned(),
            element_timeout,
            command_timeout: command::DEFAULT_TIMEOUT,
        })
    }

    /// The responder for `NFT_SET` with `BLOCK_TIMEOUT`, or `None` when `NFT_SET` is unset.
    ///
    /// # Errors
    ///
    /// As [`NftSet::new`].
    pub fn from_config(config: &Config) -> Result<Option<Self>, ResponderError> {
        config
            .nft_set
            .as_deref()
            .filter(|s| !s.trim().is_empty())
            .map(|spec| Self::new(spec, config.block_timeout))
            .transpose()
    }

    /// Runs nft as `argv` (e.g. `["ip", "netns", "exec", "ns1", "nft"]`) instead of `nft`.
    #[must_use]
    pub fn with_program(mut self, argv: Vec<String>) -> Self {
        if !argv.is_empty() {
            self.program = argv;
        }
        self
    }

    /// Sets the time limit of one `nft` run (default [`command::DEFAULT_TIMEOUT`]).
    #[must_use]
    pub fn with_command_timeout(mut self, timeout: Duration) -> Self {
        self.command_timeout = timeout;
        self
    }

    /// The set that holds `address`.
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when the family cannot hold that kind of address.
    pub fn set_for(&self, address: IpAddr) -> Result<String, ResponderError> {
        let v4 = match address {
            IpAddr::V4(_) => true,
            IpAddr::V6(v6) => v6.to_ipv4_mapped().is_some(),
        };
        let wrong = |kind| {
            Err(ResponderError::Config(format!(
                "nftables family {} cannot hold the {kind} address {address}",
                self.family
            )))
        };
        match (self.family.as_str(), v4) {
            ("ip", false) => wrong("IPv6"),
            ("ip6", true) => wrong("IPv4"),
            (_, true) => Ok(format!("{}4", self.set)),
            (_, false) => Ok(format!("{}6", self.set)),
        }
    }

    fn argv(
        &self,
        verb: &str,
        address: IpAddr,
        element: String,
    ) -> Result<Vec<String>, ResponderError> {
        let set = self.set_for(address)?;
        let mut argv = self.program.clone();
        argv.extend([
            verb.to_owned(),
            "element".to_owned(),
            self.family.clone(),
            self.table.clone(),
            set,
            element,
        ]);
        Ok(argv)
    }

    /// The argument vector that adds `address`.
    ///
    /// # Errors
    ///
    /// As [`NftSet::set_for`].
    pub fn add_argv(&self, address: IpAddr) -> Result<Vec<String>, ResponderError> {
        let ip = address_text(address);
        let element = match self.element_timeout {
            Some(t) => format!("{{ {ip} timeout {}s }}", t.as_secs().max(1)),
            None => format!("{{ {ip} }}"),
        };
        self.argv("add", address, element)
    }

    /// The argument vector that deletes `address`.
    ///
    /// # Errors
    ///
    /// As [`NftSet::set_for`].
    pub fn delete_argv(&self, address: IpAddr) -> Result<Vec<String>, ResponderError> {
        self.argv(
            "delete",
            address,
            format!("{{ {} }}", address_text(address)),
        )
    }

    fn detail(&self, address: IpAddr) -> String {
        let set = self.set_for(address).unwrap_or_else(|_| self.set.clone());
        format!("{} {} {set}", self.family, self.table)
    }

    /// Adds `address` to its set.
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] for an address the family cannot hold; the errors of
    /// [`command::run_argv`] when `nft` fails (missing table or set, no permission).
    pub fn add(&self, address: IpAddr) -> Result<(), ResponderError> {
        run_argv(&self.add_argv(address)?, self.command_timeout)
    }

    /// Deletes `address` from its set; an element that is not there (expired) is no error.
    ///
    /// # Errors
    ///
    /// As [`NftSet::add`].
    pub fn remove(&self, address: IpAddr) -> Result<(), ResponderError> {
        match run_argv(&self.delete_argv(address)?, self.command_timeout) {
            // nft says "No such file or directory" both for a missing element and for a
            // missing table or set; the element is merely gone when the set is still there.
            Err(e @ ResponderError::CommandFailed { .. }) => {
                let mut list = self.program.clone();
                list.extend(
                    [
                        "list",
                        "set",
                        &self.family,
                        &self.table,
                        &self.set_for(address)?,
                    ]
                    .map(str::to_owned),
                );
                match run_argv(&list, self.command_timeout) {
                    Ok(()) => Ok(()),
                    Err(_) => Err(e),
                }
            }
            other => other,
        }
    }

    /// The addresses in portsentry's sets of this family (`SET4` and/or `SET6`), read with
    /// `nft list set`. A set that cannot be listed is skipped; when none can, the first error
    /// is returned.
    ///
    /// # Errors
    ///
    /// [`ResponderError::Spawn`], [`ResponderError::Timeout`] or
    /// [`ResponderError::CommandFailed`] when no set could be listed.
    pub fn elements(&self) -> Result<Vec<IpAddr>, ResponderError> {
        let sets: &[&str] = match self.family.as_str() {
            "ip" => &["4"],
            "ip6" => &["6"],
            _ => &["4", "6"],
        };
        let mut found = Vec::new();
        let mut first_error = None;
        let mut listed = false;
        for suffix in sets {
            let mut argv = self.program.clone();
            argv.extend(
                [
                    "list",
                    "set",
                    &self.family,
                    &self.table,
                    &format!("{}{suffix}", self.set),
                ]
                .map(str::to_owned),
            );
            match output_of(&argv, self.command_timeout) {
                Ok(text) => {
                    listed = true;
                    found.extend(set_elements(&text));
                }
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match (listed, first_error) {
            (false, Some(e)) => Err(e),
            _ => Ok(found),
        }
    }

    fn step(
        &self,
        action: Action,
        address: IpAddr,
        result: Result<(), ResponderError>,
    ) -> Result<Outcome, ResponderError> {
        let step = Step {
            action,
            detail: self.detail(address),
            error: result.err().map(|e| e.to_string()),
        };
        if step.succeeded() {
            Ok(Outcome::Acted(vec![step]))
        } else {
            Err(ResponderError::BlockFailed { steps: vec![step] })
        }
    }
}

/// The addresses listed between `elements = {` and `}` in the output of `nft list set`.
fn set_elements(text: &str) -> Vec<IpAddr> {
    let Some(start) = text.find("elements = {") else {
        return Vec::new();
    };
    let body = &text[start + "elements = {".len()..];
    let body = body.split('}').next().unwrap_or("");
    body.split(|c: char| c.is_whitespace() || c == ',')
        .filter_map(|word| word.parse::<IpAddr>().ok())
        .collect()
}

/// Runs `argv` and returns its standard output, killing it after `timeout`.
fn output_of(argv: &[String], timeout: Duration) -> Result<String, ResponderError> {
    use std::io::Read;
    use std::process::{Command, Stdio};
    let shown = argv.join(" ");
    let (program, args) = argv
        .split_first()
        .ok_or_else(|| ResponderError::Config("an empty command line".to_owned()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|source| ResponderError::Spawn {
            command: shown.clone(),
            source,
        })?;
    let stdout = child.stdout.take();
    let reader = std::thread::spawn(move || {
        let mut text = String::new();
        if let Some(mut out) = stdout {
            let _ = out.read_to_string(&mut text);
        }
        text
    });
    let deadline = std::time::Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Ok(None) | Err(_) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(ResponderError::Timeout {
                    command: shown,
                    timeout,
                });
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    if status.success() {
        Ok(text)
    } else {
        Err(ResponderError::CommandFailed {
            command: shown,
            status: status.to_string(),
            stderr: String::new(),
        })
    }
}

impl Responder for NftSet {
    /// Deletes the elements of addresses the block table does not know.
    fn prune(&mut self, keep: &dyn Fn(IpAddr) -> bool) -> Result<Vec<Step>, ResponderError> {
        let mut steps = Vec::new();
        for address in self.elements()? {
            if keep(address) {
                continue;
            }
            let result = self.remove(address);
            steps.push(Step {
                action: Action::NftRemove,
                detail: format!("{} (stray)", address_text(address)),
                error: result.err().map(|e| e.to_string()),
            });
        }
        Ok(steps)
    }

    fn name(&self) -> &str {
        "nft"
    }

    fn role(&self) -> Role {
        Role::Block
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        if ctx.alert.response != BlockMode::Block {
            return Ok(Outcome::Skipped);
        }
        let address = ctx.alert.probe.source;
        self.step(Action::Nft, address, self.add(address))
    }

    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        let address = ctx.release.address;
        self.step(Action::NftRemove, address, self.remove(address))
    }

    /// Adds the element again with the block's remaining time (an element still there is
    /// no error for `nft add`); nothing is removed first, so the block never has a gap.
    fn on_reapply(&mut self, ctx: &ReapplyContext<'_>) -> Result<Outcome, ResponderError> {
        if ctx.alert.response != BlockMode::Block {
            return Ok(Outcome::Skipped);
        }
        let address = ctx.record.address;
        let remaining = Self {
            element_timeout: ctx.remaining,
            ..self.clone()
        };
        self.step(Action::Nft, address, remaining.add(address))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Release;
    use crate::mode::Mode;
    use crate::probe::Timestamp;
    use crate::respond::test_support::alert;
    use crate::respond::{BlockStatus, Fanout};
    use std::path::Path;
    use std::process::Command;

    #[test]
    fn set_elements_are_read_from_nft_output() {
        let text = "table inet t {\n\tset blocked4 {\n\t\ttype ipv4_addr\n\t\tflags timeout\n\t\t\
                    elements = { 203.0.113.1 timeout 1h expires 59m58s,\n\t\t\t     203.0.113.2 }\n\t}\n}\n";
        assert_eq!(
            set_elements(text),
            [
                "203.0.113.1".parse::<IpAddr>().unwrap(),
                "203.0.113.2".parse().unwrap()
            ]
        );
        assert!(set_elements("table inet t { set s { type ipv6_addr } }").is_empty());
    }

    #[test]
    fn spec_parsing_and_set_naming() {
        assert!(NftSet::new("inet portsentry", None).is_err());
        assert!(NftSet::new("inet portsentry blocked extra", None).is_err());
        assert!(NftSet::new("foo portsentry blocked", None).is_err());
        assert!(NftSet::new("inet port;sentry blocked", None).is_err());
        let ip = NftSet::new("ip filter scanners", None).unwrap();
        assert_eq!(
            ip.set_for("203.0.113.1".parse().unwrap()).unwrap(),
            "scanners4"
        );
        assert_eq!(
            ip.set_for("::ffff:203.0.113.1".parse().unwrap()).unwrap(),
            "scanners4"
        );
        assert!(ip.set_for("2001:db8::1".parse().unwrap()).is_err());
        let ip6 = NftSet::new("ip6 filter scanners", None).unwrap();
        assert!(ip6.set_for("203.0.113.1".parse().unwrap()).is_err());
        assert_eq!(
            ip.add_argv("203.0.113.1".parse().unwrap()).unwrap(),
            [
                "nft",
                "add",
                "element",
                "ip",
                "filter",
                "scanners4",
                "{ 203.0.113.1 }"
            ]
        );
        let cfg = Config {
            nft_set: Some("inet portsentry blocked".into()),
            block_timeout: Some(Duration::from_secs(90)),
            ..Config::default()
        };
        let nft = NftSet::from_config(&cfg).unwrap().unwrap();
        assert_eq!(
            nft.delete_argv("2001:db8::9".parse().unwrap()).unwrap(),
            [
                "nft",
                "delete",
                "element",
                "inet",
                "portsentry",
                "blocked6",
                "{ 2001:db8::9 }"
            ]
        );
        assert!(NftSet::from_config(&Config::default()).unwrap().is_none());
    }

    /// A network namespace that is deleted when dropped, also when the test fails.
    struct Netns(String);

    impl Netns {
        fn create() -> Option<Self> {
            if rustix::process::geteuid().as_raw() != 0 {
                eprintln!("skipping: needs root for a network namespace");
                return None;
            }
            if Command::new("nft").arg("--version").output().is_err() {
                eprintln!("skipping: nft is not installed (apt-get install nftables)");
                return None;
            }
            let name = format!("psrt-{}-nft", std::process::id());
            let ok = Command::new("ip")
                .args(["netns", "add", &name])
                .status()
                .is_ok_and(|s| s.success());
            if !ok {
                eprintln!("skipping: cannot create network namespace {name}");
                return None;
            }
            Some(Self(name))
        }

        fn nft(&self) -> Vec<String> {
            ["ip", "netns", "exec", &self.0, "nft"]
                .map(str::to_owned)
                .to_vec()
        }

        fn run(&self, args: &[&str]) -> std::process::Output {
            Command::new("ip")
                .args(["netns", "exec", &self.0, "nft"])
                .args(args)
                .output()
                .unwrap()
        }

        fn elements(&self, set: &str) -> Vec<(String, Option<u64>)> {
            let out = self.run(&["-j", "list", "set", "inet", "portsentry", set]);
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
            let set = v["nftables"]
                .as_array()
                .unwrap()
                .iter()
                .find_map(|o| o.get("set"))
                .unwrap()
                .clone();
            set.get("elem")
                .and_then(|e| e.as_array().cloned())
                .unwrap_or_default()
                .iter()
                .map(|e| match e.get("elem") {
                    Some(inner) => (
                        inner["val"].as_str().unwrap().to_owned(),
                        inner["timeout"].as_u64(),
                    ),
                    None => (e.as_str().unwrap().to_owned(), None),
                })
                .collect()
        }
    }

    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = Command::new("ip")
                .args(["netns", "delete", &self.0])
                .status();
        }
    }

    #[test]
    fn real_nft_in_a_network_namespace() {
        let Some(ns) = Netns::create() else { return };
        let ruleset =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../contrib/nftables/portsentry.nft");
        let out = ns.run(&["-f", ruleset.to_str().unwrap()]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        // Loading twice is fine (the file replaces its table).
        assert!(ns.run(&["-f", ruleset.to_str().unwrap()]).status.success());

        let nft = NftSet::new("inet portsentry blocked", Some(Duration::from_secs(3600)))
            .unwrap()
            .with_program(ns.nft());
        let mut fanout = Fanout::new().with(nft);
        let v4 = alert("203.0.113.5", 11, Mode::StealthTcp, BlockMode::Block);
        let v6 = alert("2001:db8::5", 11, Mode::StealthTcp, BlockMode::Block);
        let log_only = alert("203.0.113.6", 11, Mode::StealthTcp, BlockMode::LogOnly);
        assert_eq!(fanout.handle_alert(&v4, None).block, BlockStatus::Blocked);
        let r6 = fanout.handle_alert(&v6, None);
        assert_eq!(r6.block, BlockStatus::Blocked);
        assert_eq!(r6.steps[0].detail, "inet portsentry blocked6");
        assert_eq!(
            fanout.handle_alert(&log_only, None).block,
            BlockStatus::NotRequested
        );
        // A second alert for the same host is no error.
        assert_eq!(fanout.handle_alert(&v4, None).block, BlockStatus::Blocked);

        assert_eq!(
            ns.elements("blocked4"),
            [("203.0.113.5".to_owned(), Some(3600))]
        );
        assert_eq!(
            ns.elements("blocked6"),
            [("2001:db8::5".to_owned(), Some(3600))]
        );

        let release = Release {
            address: "203.0.113.5".parse().unwrap(),
            blocked_at: Timestamp::from_secs(1),
            released_at: Timestamp::from_secs(2),
            mode: crate::Mode::StealthTcp,
            port: 79,
        };
        let report = fanout.handle_release(&release, None);
        assert!(report.responders[0].result.is_ok(), "{report:?}");
        assert!(ns.elements("blocked4").is_empty());
        // Releasing an element that is gone (expired) is fine.
        let again = fanout.handle_release(&release, None);
        assert!(again.responders[0].result.is_ok(), "{again:?}");

        // A missing set is a failed block, with nft's message.
        let missing = NftSet::new("inet nosuchtable blocked", None)
            .unwrap()
            .with_program(ns.nft());
        let report = Fanout::new().with(missing.clone()).handle_alert(&v4, None);
        assert_eq!(report.block, BlockStatus::Failed);
        assert!(
            report.steps[0]
                .error
                .as_deref()
                .unwrap()
                .contains("No such file"),
            "{report:?}"
        );
        assert!(missing.remove("203.0.113.5".parse().unwrap()).is_err());
    }
}
