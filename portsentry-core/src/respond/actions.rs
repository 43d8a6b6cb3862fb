//! PortSentry's action sequence (`KILL_RUN_CMD`, `KILL_HOSTS_DENY`, `KILL_ROUTE`) as one
//! blocking responder, plus `UNBLOCK_CMD` on release.
//!
//! What runs depends on the alert's [`BlockMode`] (`BLOCK_TCP` / `BLOCK_UDP`):
//!
//! | Block mode | Steps | Host recorded as blocked |
//! |---|---|---|
//! | `0` [`LogOnly`](BlockMode::LogOnly) | none ([`Outcome::Skipped`]) | no |
//! | `1` [`Block`](BlockMode::Block) | `KILL_RUN_CMD` first if `KILL_RUN_CMD_FIRST=1`, then `KILL_HOSTS_DENY`, then `KILL_ROUTE`, then `KILL_RUN_CMD` if `KILL_RUN_CMD_FIRST=0` | if every step succeeded |
//! | `2` [`RunCommandOnly`](BlockMode::RunCommandOnly) | `KILL_RUN_CMD` only | if it succeeded |
//!
//! Only configured steps run. Every step runs even when an earlier one failed (a failing
//! route command must not keep the hosts.deny line from being written), but the block
//! **succeeds only when every step that ran succeeded**. PortSentry 1.2 had the same "all"
//! rule on paper while counting every command as a success (`system()` status bug);
//! PortSentry 2.0 counts a block as done when *any* step worked. We take "all": a host
//! recorded as blocked must really be blocked by everything the administrator configured,
//! and a failure leaves it unrecorded so the next probe tries again.
//!
//! If nothing is configured for the alert's mode (e.g. `BLOCK_TCP=1` without any `KILL_*`),
//! the responder returns [`Outcome::Skipped`] and nothing is recorded as blocked.

use std::net::IpAddr;
use std::time::Duration;

use super::command::{self, ShellCommand, Tokens};
use super::hosts_deny::HostsDeny;
use super::{Action, AlertContext, Outcome, ReleaseContext, Responder, ResponderError, Role, Step};
use crate::config::{BlockMode, Config};

/// The `KILL_*` action sequence; see the [module docs](self).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Actions {
    run_cmd: Option<ShellCommand>,
    run_cmd_first: bool,
    hosts_deny: Option<HostsDeny>,
    route: Option<ShellCommand>,
    unblock: Option<ShellCommand>,
}

fn configured(value: Option<&String>) -> Option<&str> {
    value.map(|s| s.trim()).filter(|s| !s.is_empty())
}

impl Actions {
    /// Builds the sequence from `KILL_RUN_CMD`, `KILL_RUN_CMD_FIRST`, `KILL_HOSTS_DENY` (with
    /// `HOSTS_DENY_FILE`), `KILL_ROUTE` and `UNBLOCK_CMD`. Commands get
    /// [`command::DEFAULT_TIMEOUT`].
    ///
    /// # Errors
    ///
    /// [`ResponderError::Config`] when `KILL_HOSTS_DENY` or `KILL_ROUTE` lacks `$TARGET$`
    /// (PortSentry skips such a setting; we refuse to start with it).
    ///
    /// # Examples
    ///
    /// ```
    /// use portsentry_core::Config;
    /// use portsentry_core::respond::Actions;
    /// let config = Config {
    ///     kill_route: Some("/sbin/ip route add blackhole $TARGET$".into()),
    ///     ..Config::default()
    /// };
    /// let actions = Actions::from_config(&config).unwrap();
    /// assert!(!actions.is_empty());
    /// ```
    pub fn from_config(config: &Config) -> Result<Self, ResponderError> {
        Self::from_config_with_timeout(config, command::DEFAULT_TIMEOUT)
    }

    /// As [`Actions::from_config`], with a time limit per command.
    ///
    /// # Errors
    ///
    /// As [`Actions::from_config`].
    pub fn from_config_with_timeout(
        config: &Config,
        timeout: Duration,
    ) -> Result<Self, ResponderError> {
        let shell = |s: &str| ShellCommand::new(s).with_timeout(timeout);
        let route = configured(config.kill_route.as_ref());
        if route.is_some_and(|r| !r.contains("$TARGET$")) {
            return Err(ResponderError::Config(
                "KILL_ROUTE must contain $TARGET$".to_owned(),
            ));
        }
        let hosts_deny = configured(config.kill_hosts_deny.as_ref())
            .map(|t| HostsDeny::new(config.hosts_deny_file.clone(), t))
            .transpose()?;
        Ok(Self {
            run_cmd: configured(config.kill_run_cmd.as_ref()).map(shell),
            run_cmd_first: config.kill_run_cmd_first,
            hosts_deny,
            route: route.map(shell),
            unblock: configured(config.unblock_cmd.as_ref()).map(shell),
        })
    }

    /// True when no action at all is configured (the responder would never act).
    pub fn is_empty(&self) -> bool {
        self.run_cmd.is_none()
            && self.hosts_deny.is_none()
            && self.route.is_none()
            && self.unblock.is_none()
    }

    /// Runs the steps for `mode` and returns them, in order.
    pub fn run_steps(&self, mode: BlockMode, tokens: &Tokens) -> Vec<Step> {
        let mut steps = Vec::new();
        match mode {
            BlockMode::LogOnly => {}
            BlockMode::RunCommandOnly => {
                if let Some(cmd) = &self.run_cmd {
                    steps.push(shell_step(Action::RunCommand, cmd, tokens));
                }
            }
            BlockMode::Block => {
                if self.run_cmd_first
                    && let Some(cmd) = &self.run_cmd
                {
                    steps.push(shell_step(Action::RunCommand, cmd, tokens));
                }
                if let Some(hd) = &self.hosts_deny {
                    steps.push(match hd.add(tokens) {
                        Ok(added) => Step {
                            action: Action::HostsDeny,
                            detail: added.line().to_owned(),
                            error: None,
                        },
                        Err(e) => Step {
                            action: Action::HostsDeny,
                            detail: hd.line(tokens),
                            error: Some(e.to_string()),
                        },
                    });
                }
                if let Some(route) = &self.route {
                    steps.push(shell_step(Action::Route, route, tokens));
                }
                if !self.run_cmd_first
                    && let Some(cmd) = &self.run_cmd
                {
                    steps.push(shell_step(Action::RunCommand, cmd, tokens));
                }
            }
        }
        steps
    }
}

fn shell_step(action: Action, cmd: &ShellCommand, tokens: &Tokens) -> Step {
    match cmd.run(tokens) {
        Ok(detail) => Step {
            action,
            detail,
            error: None,
        },
        Err((detail, e)) => Step {
            action,
            detail,
            error: Some(e.to_string()),
        },
    }
}

fn finish(steps: Vec<Step>) -> Result<Outcome, ResponderError> {
    if steps.is_empty() {
        Ok(Outcome::Skipped)
    } else if steps.iter().all(Step::succeeded) {
        Ok(Outcome::Acted(steps))
    } else {
        Err(ResponderError::BlockFailed { steps })
    }
}

impl Responder for Actions {
    /// Removes hosts.deny lines of addresses the block table does not know.
    fn prune(&mut self, keep: &dyn Fn(IpAddr) -> bool) -> Result<Vec<Step>, ResponderError> {
        let Some(hd) = &self.hosts_deny else {
            return Ok(Vec::new());
        };
        Ok(hd
            .prune(keep)?
            .into_iter()
            .map(|address| Step {
                action: Action::HostsDenyRemove,
                detail: format!("{} (stray)", super::address_text(address)),
                error: None,
            })
            .collect())
    }

    fn name(&self) -> &str {
        "actions"
    }

    fn role(&self) -> Role {
        Role::Block
    }

    fn on_alert(&mut self, ctx: &AlertContext<'_>) -> Result<Outcome, ResponderError> {
        let tokens = Tokens::of_alert(ctx.alert);
        finish(self.run_steps(ctx.alert.response, &tokens))
    }

    /// Removes the host's hosts.deny lines, then runs `UNBLOCK_CMD` (`$PORT$` and `$MODE$`
    /// are empty in a release).
    fn on_release(&mut self, ctx: &ReleaseContext<'_>) -> Result<Outcome, ResponderError> {
        let address = ctx.release.address;
        let mut steps = Vec::new();
        if let Some(hd) = &self.hosts_deny {
            let detail = hd.path().display().to_string();
            steps.push(match hd.remove(address) {
                Ok(_) => Step {
                    action: Action::HostsDenyRemove,
                    detail,
                    error: None,
                },
                Err(e) => Step {
                    action: Action::HostsDenyRemove,
                    detail,
                    error: Some(e.to_string()),
                },
            });
        }
        if let Some(cmd) = &self.unblock {
            let tokens = Tokens {
                target: address,
                port: Some(ctx.release.port),
                mode: Some(ctx.release.mode),
            };
            steps.push(shell_step(Action::Unblock, cmd, &tokens));
        }
        finish(steps)
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
    use std::fs;
    use std::path::Path;

    struct Setup {
        _dir: tempfile::TempDir,
        log: std::path::PathBuf,
        deny: std::path::PathBuf,
    }

    fn setup() -> Setup {
        let dir = tempfile::tempdir().unwrap();
        Setup {
            log: dir.path().join("log"),
            deny: dir.path().join("hosts.deny"),
            _dir: dir,
        }
    }

    fn config(s: &Setup, first: bool) -> Config {
        let log = s.log.display();
        Config {
            kill_run_cmd: Some(format!("echo cmd $TARGET$ $PORT$ $MODE$ >> {log}")),
            kill_run_cmd_first: first,
            kill_route: Some(format!("echo route $TARGET$ >> {log}")),
            kill_hosts_deny: Some("ALL: $TARGET$ : DENY".into()),
            hosts_deny_file: s.deny.clone(),
            unblock_cmd: Some(format!("echo unblock $TARGET$ $PORT$ $MODE$ >> {log}")),
            ..Config::default()
        }
    }

    fn run(config: &Config, response: BlockMode) -> crate::respond::AlertReport {
        let mut fanout = Fanout::new().with(Actions::from_config(config).unwrap());
        let a = alert("203.0.113.9", 31337, Mode::StealthTcp, response);
        fanout.handle_alert(&a, None)
    }

    fn lines(path: &Path) -> Vec<String> {
        fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn block_1_order_with_command_last() {
        let s = setup();
        let report = run(&config(&s, false), BlockMode::Block);
        assert_eq!(report.block, BlockStatus::Blocked);
        let order: Vec<_> = report.steps.iter().map(|st| st.action.clone()).collect();
        assert_eq!(
            order,
            [Action::HostsDeny, Action::Route, Action::RunCommand]
        );
        assert_eq!(
            lines(&s.log),
            ["route 203.0.113.9", "cmd 203.0.113.9 31337 stcp"]
        );
        assert_eq!(lines(&s.deny), ["ALL: 203.0.113.9 : DENY"]);
    }

    #[test]
    fn block_1_order_with_command_first() {
        let s = setup();
        let report = run(&config(&s, true), BlockMode::Block);
        assert_eq!(report.block, BlockStatus::Blocked);
        let order: Vec<_> = report.steps.iter().map(|st| st.action.clone()).collect();
        assert_eq!(
            order,
            [Action::RunCommand, Action::HostsDeny, Action::Route]
        );
        assert_eq!(
            lines(&s.log),
            ["cmd 203.0.113.9 31337 stcp", "route 203.0.113.9"]
        );
    }

    #[test]
    fn block_0_does_nothing_and_records_nothing() {
        let s = setup();
        let report = run(&config(&s, false), BlockMode::LogOnly);
        assert_eq!(report.block, BlockStatus::NotRequested);
        assert!(report.steps.is_empty());
        assert!(!s.log.exists());
        assert!(!s.deny.exists());
    }

    #[test]
    fn block_2_runs_the_command_only() {
        let s = setup();
        let report = run(&config(&s, false), BlockMode::RunCommandOnly);
        assert_eq!(report.block, BlockStatus::Blocked);
        assert_eq!(lines(&s.log), ["cmd 203.0.113.9 31337 stcp"]);
        assert!(!s.deny.exists());
    }

    #[test]
    fn a_failing_command_is_a_failed_block_but_other_steps_still_run() {
        let s = setup();
        let mut c = config(&s, false);
        c.kill_route = Some("echo oops >&2; false $TARGET$".into());
        let report = run(&c, BlockMode::Block);
        assert_eq!(report.block, BlockStatus::Failed);
        assert_eq!(report.steps.len(), 3);
        assert!(report.steps[0].succeeded());
        let route_error = report.steps[1].error.as_deref().unwrap();
        assert!(
            route_error.contains("exit status 1") && route_error.contains("oops"),
            "{route_error}"
        );
        assert!(report.steps[2].succeeded());
        assert_eq!(lines(&s.log), ["cmd 203.0.113.9 31337 stcp"]);
    }

    #[test]
    fn a_missing_command_is_a_failed_block() {
        let s = setup();
        let mut c = config(&s, false);
        c.kill_run_cmd = Some("/nonexistent/portsentry-block $TARGET$".into());
        let report = run(&c, BlockMode::RunCommandOnly);
        assert_eq!(report.block, BlockStatus::Failed);
        assert!(report.steps[0].error.as_deref().unwrap().contains("127"));
    }

    #[test]
    fn block_1_without_actions_is_not_requested() {
        let report = run(&Config::default(), BlockMode::Block);
        assert_eq!(report.block, BlockStatus::NotRequested);
    }

    #[test]
    fn route_without_target_is_rejected() {
        let c = Config {
            kill_route: Some("/sbin/route add -host reject".into()),
            ..Config::default()
        };
        assert!(matches!(
            Actions::from_config(&c),
            Err(ResponderError::Config(_))
        ));
    }

    #[test]
    fn prune_removes_only_lines_of_the_template_for_unknown_addresses() {
        let s = setup();
        let c = config(&s, false);
        fs::write(
            &s.deny,
            "ALL: 203.0.113.1 : DENY\nALL: 203.0.113.2 : DENY\nsshd: 203.0.113.3\nALL: 2001:db8::5 : DENY\n",
        )
        .unwrap();
        let mut actions = Actions::from_config(&c).unwrap();
        let keep = |a: std::net::IpAddr| a == "203.0.113.1".parse::<std::net::IpAddr>().unwrap();
        let steps = actions.prune(&keep).unwrap();
        let removed: Vec<&str> = steps.iter().map(|s| s.detail.as_str()).collect();
        assert_eq!(removed, ["203.0.113.2 (stray)", "2001:db8::5 (stray)"]);
        assert_eq!(
            lines(&s.deny),
            ["ALL: 203.0.113.1 : DENY", "sshd: 203.0.113.3"]
        );
    }

    #[test]
    fn release_removes_hosts_deny_line_and_runs_unblock() {
        let s = setup();
        let c = config(&s, false);
        run(&c, BlockMode::Block);
        let mut fanout = Fanout::new().with(Actions::from_config(&c).unwrap());
        let release = Release {
            address: "203.0.113.9".parse().unwrap(),
            blocked_at: Timestamp::from_secs(1),
            released_at: Timestamp::from_secs(2),
            mode: crate::Mode::StealthTcp,
            port: 79,
        };
        let report = fanout.handle_release(&release, None);
        assert!(
            report.responders[0].result.is_ok(),
            "{:?}",
            report.responders
        );
        assert_eq!(lines(&s.deny), Vec::<String>::new());
        assert_eq!(lines(&s.log).last().unwrap(), "unblock 203.0.113.9 79 stcp");
    }
}
