//! PortSentry's own mode flags, rewritten before clap sees the command line.
//!
//! PortSentry 1.2 is started as `portsentry -atcp` (one of `-tcp -udp -stcp -sudp -atcp
//! -audp`), PortSentry 2.0 as `portsentry --stealth` or `--connect`. clap would read `-tcp`
//! as the short flags `-t -c -p`, so each of these words is rewritten into `--mode NAME`
//! (`--stealth` into `--mode stcp --mode sudp`, `--connect` into `--mode tcp --mode udp`)
//! before parsing. Several may be given at once (`portsentry -stcp -sudp`). Only whole
//! arguments are rewritten, and nothing after a `--` separator or in the value position of
//! an option that takes one (`-c -tcp` keeps `-tcp` as the file name).

use std::ffi::OsString;

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

/// Rewrites the legacy mode words of `args` (the program name first) into `--mode NAME`.
pub(crate) fn rewrite(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let mut out = Vec::new();
    let mut value_next = false;
    let mut after_separator = false;
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
            for mode in modes {
                out.push("--mode".into());
                out.push((*mode).into());
            }
            continue;
        } else if text.is_some_and(|t| TAKES_VALUE.contains(&t)) {
            value_next = true;
        }
        out.push(arg);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Vec<String> {
        rewrite(args.iter().map(OsString::from))
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
}
