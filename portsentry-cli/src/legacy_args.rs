//! PortSentry's own mode flags, rewritten before clap sees the command line.
//!
//! PortSentry 1.2 is started as `portsentry -atcp` (one of `-tcp -udp -stcp -sudp -atcp
//! -audp`), PortSentry 2.0 as `portsentry --stealth` or `--connect`. clap would read `-tcp`
//! as the short flags `-t -c -p`, so each of these words is rewritten into `--mode NAME`
//! (`--stealth` into `--mode stcp --mode sudp`, `--connect` into `--mode tcp --mode udp`)
//! before parsing. Several may be given at once (`portsentry -stcp -sudp`). Only whole
//! arguments are rewritten, and nothing after a `--` separator or in the value position of
//! an option that takes one (`-c -tcp` keeps `-tcp` as the file name).
//!
//! After a subcommand the words are rewritten only when that subcommand has a `--mode`
//! option (`replay -atcp`); elsewhere (`check-config -atcp`) they are a [`Misplaced`] error
//! that names the word as typed, not the `--mode` it would have become.

use std::ffi::OsString;

use clap::Command;
use clap::error::{ContextKind, ContextValue, ErrorKind};

/// Options whose next argument is their value (so it is never rewritten).
const TAKES_VALUE: &[&str] = &[
    "-c",
    "--config",
    "-m",
    "--mode",
    "-i",
    "--interface",
    "--pid-file",
    "--log-target",
    "--log-format",
];

/// The `--mode` values one legacy word stands for, if it is one.
fn modes_of(word: &str) -> Option<&'static [&'static str]> {
    Some(match word {
        "-tcp" => &["tcp"],
        "-udp" => &["udp"],
        "-stcp" => &["stcp"],
        "-sudp" => &["sudp"],
        "-atcp" => &["atcp"],
        "-audp" => &["audp"],
        "--stealth" => &["stcp", "sudp"],
        "--connect" => &["tcp", "udp"],
        _ => return None,
    })
}

/// A legacy mode word after a subcommand that has no `--mode` option.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Misplaced {
    /// The word as typed (`-atcp`).
    pub(crate) word: String,
    /// The subcommand's name as typed (`check-config`).
    pub(crate) subcommand: String,
}

impl Misplaced {
    /// clap's own "unexpected argument" error for the word, with the subcommand's usage and
    /// a tip on where mode flags go. `root` is the whole command line's [`Command`].
    pub(crate) fn into_clap_error(self, root: &mut Command) -> clap::Error {
        root.build();
        let Some(sub) = root.find_subcommand_mut(&self.subcommand) else {
            return clap::Error::raw(
                ErrorKind::UnknownArgument,
                format!("unexpected argument '{}' found\n", self.word),
            )
            .with_cmd(root);
        };
        let usage = sub.render_usage();
        let mut error = clap::Error::new(ErrorKind::UnknownArgument).with_cmd(sub);
        let tip = format!(
            "'{}' is a PortSentry mode flag for running the detector ('portsentry {}'); \
             '{}' takes no mode",
            self.word, self.word, self.subcommand
        );
        error.insert(ContextKind::InvalidArg, ContextValue::String(self.word));
        error.insert(
            ContextKind::Suggested,
            ContextValue::StyledStrs(vec![tip.into()]),
        );
        error.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
        error
    }
}

/// Rewrites the legacy mode words of `args` (the program name first) into `--mode NAME`.
/// `command` is the whole command line's [`Command`]: its subcommands, and whether each has
/// a `--mode` option, decide what happens to the words after one.
///
/// # Errors
///
/// [`Misplaced`] for a mode word after a subcommand without `--mode`.
pub(crate) fn rewrite(
    args: impl IntoIterator<Item = OsString>,
    command: &Command,
) -> Result<Vec<OsString>, Misplaced> {
    let mut out = Vec::new();
    let mut value_next = false;
    let mut after_separator = false;
    // The subcommand given so far, and whether it takes `--mode`.
    let mut subcommand: Option<(String, bool)> = None;
    for (i, arg) in args.into_iter().enumerate() {
        if i == 0 || after_separator || value_next {
            value_next = false;
            out.push(arg);
            continue;
        }
        let text = arg.to_str();
        if text == Some("--") {
            after_separator = true;
        } else if let Some(modes) = text.and_then(modes_of) {
            if let Some((name, false)) = &subcommand {
                return Err(Misplaced {
                    word: text.unwrap_or_default().to_owned(),
                    subcommand: name.clone(),
                });
            }
            for mode in modes {
                out.push("--mode".into());
                out.push((*mode).into());
            }
            continue;
        } else if text.is_some_and(|t| TAKES_VALUE.contains(&t)) {
            value_next = true;
        } else if subcommand.is_none()
            && let Some(name) = text
            && let Some(sub) = command.find_subcommand(name)
        {
            let has_mode = sub.get_arguments().any(|a| a.get_long() == Some("mode"));
            subcommand = Some((name.to_owned(), has_mode));
        }
        out.push(arg);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    use crate::cli::Cli;

    fn try_run(args: &[&str]) -> Result<Vec<OsString>, Misplaced> {
        rewrite(args.iter().map(OsString::from), &Cli::command())
    }

    fn run(args: &[&str]) -> Vec<String> {
        try_run(args)
            .unwrap()
            .into_iter()
            .map(|a| a.into_string().unwrap())
            .collect()
    }

    #[test]
    fn legacy_words_become_mode_options() {
        assert_eq!(
            run(&["portsentry", "-atcp"]),
            ["portsentry", "--mode", "atcp"]
        );
        assert_eq!(
            run(&["portsentry", "-stcp", "-sudp", "-c", "x.conf"]),
            [
                "portsentry",
                "--mode",
                "stcp",
                "--mode",
                "sudp",
                "-c",
                "x.conf"
            ]
        );
        assert_eq!(
            run(&["portsentry", "--connect"]),
            ["portsentry", "--mode", "tcp", "--mode", "udp"]
        );
    }

    #[test]
    fn values_and_separated_arguments_are_left_alone() {
        assert_eq!(
            run(&["portsentry", "-c", "-tcp"]),
            ["portsentry", "-c", "-tcp"]
        );
        assert_eq!(
            run(&["portsentry", "--", "-udp"]),
            ["portsentry", "--", "-udp"]
        );
        assert_eq!(
            run(&["-tcp"]),
            ["-tcp"],
            "the program name is never rewritten"
        );
        assert_eq!(
            run(&["portsentry", "--mode", "stcp", "-D"]),
            ["portsentry", "--mode", "stcp", "-D"]
        );
    }

    #[test]
    fn after_a_subcommand_only_one_with_a_mode_option_takes_mode_words() {
        assert_eq!(
            run(&["portsentry", "replay", "-atcp", "x.pcap"]),
            ["portsentry", "replay", "--mode", "atcp", "x.pcap"]
        );
        assert_eq!(
            try_run(&["portsentry", "check-config", "-c", "x.conf", "-atcp"]),
            Err(Misplaced {
                word: "-atcp".into(),
                subcommand: "check-config".into()
            })
        );
        assert_eq!(
            try_run(&["portsentry", "status", "--stealth"]),
            Err(Misplaced {
                word: "--stealth".into(),
                subcommand: "status".into()
            })
        );
        // A subcommand's name as an option's value is not a subcommand.
        assert_eq!(
            run(&["portsentry", "-c", "status", "-stcp"]),
            ["portsentry", "-c", "status", "--mode", "stcp"]
        );
        // Before the subcommand the words are rewritten as always (clap then decides).
        assert_eq!(
            run(&["portsentry", "-atcp", "check-config"]),
            ["portsentry", "--mode", "atcp", "check-config"]
        );
    }
}
