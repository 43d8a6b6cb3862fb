//! Which configuration is used, and loading it with everything `check-config` reports.

use std::fmt;
use std::path::{Path, PathBuf};

use portsentry_core::config::{
    self, Config, ConfigError, ConfigProblem, DEFAULT_CONF, DEFAULT_ORIGIN,
};
use portsentry_core::engine::Settings;
use portsentry_core::ignore::{IgnoreError, IgnoreList, IgnoreProblem};
use portsentry_core::permissions::{self, PermissionFinding};

/// The configuration file used when `-c` is not given, if it exists.
pub(crate) const SYSTEM_CONFIG: &str = "/etc/portsentry/portsentry.conf";

/// Where the configuration comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Origin {
    /// `-c FILE` or `PORTSENTRY_CONFIG`.
    Given(PathBuf),
    /// The system file, found because no file was given.
    System(PathBuf),
    /// The embedded default: no file given and no system file.
    BuiltIn,
}

impl Origin {
    /// Chooses: the given file, else `system` when it exists, else the built-in default.
    pub(crate) fn choose(given: Option<&Path>, system: &Path) -> Self {
        match given {
            Some(path) => Self::Given(path.to_owned()),
            None if system.exists() => Self::System(system.to_owned()),
            None => Self::BuiltIn,
        }
    }

    /// The file, unless the built-in default is used.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Self::Given(path) | Self::System(path) => Some(path),
            Self::BuiltIn => None,
        }
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Given(path) => write!(f, "{}", path.display()),
            Self::System(path) => write!(f, "{} (no -c given)", path.display()),
            Self::BuiltIn => write!(
                f,
                "{DEFAULT_ORIGIN} (no -c given and {SYSTEM_CONFIG} does not exist)"
            ),
        }
    }
}

/// A configuration that loaded, with its ignore list and everything worth a warning.
#[derive(Debug)]
pub(crate) struct Checked {
    pub(crate) origin: Origin,
    /// The configuration, with state paths resolved against `state_dir`.
    pub(crate) config: Config,
    pub(crate) state_dir: PathBuf,
    /// The parsed ignore file, when one is set and exists.
    pub(crate) ignore: Option<IgnoreList>,
    /// Everything that lets someone other than root control the configuration, the ignore
    /// file or a file root writes; when there is any, `config` was [disarmed](permissions::disarm).
    pub(crate) findings: Vec<PermissionFinding>,
    pub(crate) warnings: Vec<String>,
}

impl Checked {
    /// What the engine and the responders are built from.
    pub(crate) fn settings(&self) -> Settings {
        Settings {
            config: self.config.clone(),
            ignore: self.ignore.clone(),
            config_file: self.origin.path().map(ToOwned::to_owned),
        }
    }
}

/// Why a configuration cannot be used.
#[derive(Debug)]
pub(crate) enum Failure {
    /// A file could not be read (the message says which and why).
    Unreadable(String),
    /// Invalid lines in the configuration and/or the ignore file.
    Invalid {
        problems: Vec<String>,
        warnings: Vec<String>,
    },
}

/// Loads the configuration from `origin`, then the ignore file it names, each read once from
/// one descriptor whose whole path is checked ([`permissions::read_checked`]); when running
/// as root, the files root writes are checked too. Every problem of both files is collected;
/// a permission finding disarms the configuration ([`permissions::disarm`]: log only).
pub(crate) fn load(origin: Origin) -> Result<Checked, Failure> {
    let loaded = match origin.path() {
        Some(path) => Config::load_checked(path),
        None => Config::parse_str(DEFAULT_CONF, DEFAULT_ORIGIN).map(|l| (l, Vec::new())),
    };
    let (mut config, mut warnings, mut findings) = match loaded {
        Ok((loaded, findings)) => (loaded.config, shown(&loaded.warnings), findings),
        Err(ConfigError::Invalid {
            problems, warnings, ..
        }) => {
            return Err(Failure::Invalid {
                problems: shown::<ConfigProblem>(&problems),
                warnings: shown(&warnings),
            });
        }
        Err(err) => return Err(Failure::Unreadable(err.to_string())),
    };
    let state_dir = config::state_directory();
    config.resolve_state_paths(&state_dir);
    let ignore = match &config.ignore_file {
        None => None,
        Some(path) if !findings.is_empty() => {
            // The name comes from a file others control: root reads nothing it names.
            warnings.push(format!(
                "{}: IGNORE_FILE {} is not read while the configuration is not root's alone \
                 (see below): no address is ignored through it",
                origin_label(&origin),
                path.display()
            ));
            None
        }
        Some(path) if !path.exists() => {
            warnings.push(format!(
                "{}: IGNORE_FILE {} does not exist: no address is ignored through it",
                origin_label(&origin),
                path.display()
            ));
            None
        }
        Some(path) => match IgnoreList::load_checked(path) {
            Ok((list, found)) => {
                findings.extend(found);
                Some(list)
            }
            Err(IgnoreError::Invalid { problems, .. }) => {
                return Err(Failure::Invalid {
                    problems: shown::<IgnoreProblem>(&problems),
                    warnings,
                });
            }
            Err(err) => return Err(Failure::Unreadable(err.to_string())),
        },
    };
    if let Some(group) = &config.control_group
        && let Err(e) = crate::run::resolve_group(group, Path::new(crate::run::GROUP_FILE))
    {
        warnings.push(format!(
            "{}: {e:#}: the detector will not start",
            origin_label(&origin)
        ));
    }
    if config::running_as_root() {
        for file in permissions::written_files(&config) {
            findings.extend(permissions::check_written_file(file));
        }
    }
    if !findings.is_empty() {
        permissions::disarm(&mut config);
    }
    warnings.extend(shown::<PermissionFinding>(&findings));
    Ok(Checked {
        origin,
        config,
        state_dir,
        ignore,
        findings,
        warnings,
    })
}

fn origin_label(origin: &Origin) -> String {
    origin
        .path()
        .map_or_else(|| DEFAULT_ORIGIN.to_owned(), |p| p.display().to_string())
}

fn shown<T: ToString>(items: &[T]) -> Vec<String> {
    items.iter().map(ToString::to_string).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origin_choice() {
        let missing = Path::new("/nonexistent/portsentry.conf");
        assert_eq!(Origin::choose(None, missing), Origin::BuiltIn);
        assert_eq!(
            Origin::choose(Some(Path::new("a.conf")), missing),
            Origin::Given("a.conf".into())
        );
        let existing = Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml");
        assert_eq!(
            Origin::choose(None, &existing),
            Origin::System(existing.clone())
        );
        assert!(Origin::BuiltIn.to_string().contains("does not exist"));
    }

    #[test]
    fn built_in_default_loads_cleanly() {
        let checked = load(Origin::BuiltIn).unwrap();
        assert!(checked.warnings.is_empty(), "{:?}", checked.warnings);
        assert!(
            checked
                .config
                .history_file
                .unwrap()
                .starts_with(&checked.state_dir)
        );
    }
}
