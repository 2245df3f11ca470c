//! Moderation: moderators and their tokens, the admin API's authentication, the audit log,
//! kicks, bans and mutes.

mod cli;

use std::{path::Path, process::Command};

/// Runs `passerby --data-dir DIR moderator ARGS…`: (success, stdout, stderr).
pub fn moderator(data_dir: &Path, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_passerby"))
        .arg("--data-dir")
        .arg(data_dir)
        .arg("moderator")
        .args(args)
        .env_remove("PASSERBY_DATA_DIR")
        .env_remove("RUST_BACKTRACE")
        .output()
        .expect("the binary runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Adds a moderator with the real command and returns their token.
pub fn add_moderator(data_dir: &Path, name: &str) -> String {
    let (ok, stdout, stderr) = moderator(data_dir, &["add", name]);
    assert!(ok, "moderator add {name} failed: {stderr}");
    stdout.trim().to_owned()
}
