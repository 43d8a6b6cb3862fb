//! Paths shared by the integration tests.

use std::path::{Path, PathBuf};

/// The workspace root (the parent of `portsentry-core`).
pub(crate) fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("portsentry-core has a parent directory")
        .to_path_buf()
}

/// The shared real captures: `$PORTSENTRY_CAPTURES`, else the first `shared/captures` found
/// beside the workspace root or one of its ancestors (`../shared/captures` of the project).
#[cfg(feature = "pcap")]
pub(crate) fn captures_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PORTSENTRY_CAPTURES") {
        return PathBuf::from(dir);
    }
    workspace_root()
        .ancestors()
        .skip(1)
        .map(|dir| dir.join("shared").join("captures"))
        .find(|dir| dir.join("manifest.json").is_file())
        .expect("shared captures not found: set PORTSENTRY_CAPTURES to the directory holding manifest.json")
}
