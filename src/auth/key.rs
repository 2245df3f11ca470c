//! The cookie signing key: read from the secret file, or created there with mode 0600.

use std::{
    fs,
    io::{self, Write},
    os::unix::fs::{OpenOptionsExt, PermissionsExt},
    path::Path,
};

use anyhow::{Context, bail};
use axum_extra::extract::cookie::Key;
use base64::{Engine as _, engine::general_purpose::STANDARD};

/// The file holds base64 of at least 64 random bytes. Several instances share one file.
pub fn load_or_create_key(path: &Path) -> anyhow::Result<Key> {
    match fs::read_to_string(path) {
        Ok(text) => {
            warn_if_readable_by_others(path);
            let bytes = STANDARD
                .decode(text.trim())
                .with_context(|| format!("secret file {} is not base64", path.display()))?;
            if bytes.len() < 64 {
                bail!(
                    "secret file {} holds {} bytes; it needs at least 64 (try `head -c 64 /dev/urandom | base64 -w0`)",
                    path.display(),
                    bytes.len()
                );
            }
            Ok(Key::from(&bytes))
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => create(path),
        Err(e) => Err(e).with_context(|| format!("reading secret file {}", path.display())),
    }
}

fn create(path: &Path) -> anyhow::Result<Key> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let key = Key::generate();
    // create_new: if another instance wrote the file first, use theirs instead of racing it.
    let file = fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match file {
        Ok(mut file) => {
            writeln!(file, "{}", STANDARD.encode(key.master()))
                .and_then(|()| file.sync_all())
                .with_context(|| format!("writing secret file {}", path.display()))?;
            tracing::info!(path = %path.display(), "created a new cookie signing key");
            Ok(key)
        }
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => load_or_create_key(path),
        Err(e) => Err(e).with_context(|| format!("creating secret file {}", path.display())),
    }
}

fn warn_if_readable_by_others(path: &Path) {
    if let Ok(meta) = fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        tracing::warn!(path = %path.display(), "secret file is readable by group or others; chmod 600 it");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn creates_a_private_key_file_and_reads_it_back() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub/secret.key");
        let key = load_or_create_key(&path).unwrap();
        let mode = fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        assert_eq!(load_or_create_key(&path).unwrap().master(), key.master());
    }

    #[test]
    fn refuses_a_short_or_garbled_key() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret.key");
        fs::write(&path, STANDARD.encode([1u8; 16])).unwrap();
        let err = load_or_create_key(&path).unwrap_err().to_string();
        assert!(err.contains("at least 64"), "{err}");
        fs::write(&path, "%%%").unwrap();
        assert!(load_or_create_key(&path).is_err());
    }
}
