//! `Folder`: the directory that keeps uploaded images as files, `--upload-dir`. Several
//! instances may share it (an NFS export, one disk): each writes a temp file in it and renames
//! it into place, so another instance sees a whole image or none. With an object store it
//! only holds the uploads still arriving.

use std::{
    io,
    path::{Path, PathBuf},
    time::{Duration, SystemTime},
};

use super::{TEMP_PREFIX, UploadName};

/// A temp file untouched this long is a crash's leftover. An upload still arriving writes to
/// its file at least every 64 KiB, and a body that stalls for `--body-timeout` is dropped
/// with its file, so only a crash leaves one this old; a younger one may be another
/// instance's upload in progress in a shared folder, and stays.
pub const STALE_TEMP: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct Folder {
    dir: PathBuf,
}

impl Folder {
    /// Creates the directory if missing and removes the stale temp files a crash left behind.
    pub fn open(dir: &Path) -> io::Result<Folder> {
        std::fs::create_dir_all(dir)?;
        let folder = Folder {
            dir: dir.to_owned(),
        };
        folder.sweep(SystemTime::now(), STALE_TEMP)?;
        Ok(folder)
    }

    /// Removes temp files last written more than `age` before `now`.
    fn sweep(&self, now: SystemTime, age: Duration) -> io::Result<()> {
        for entry in std::fs::read_dir(&self.dir)? {
            let entry = entry?;
            if !entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                continue;
            }
            let written = entry.metadata().and_then(|m| m.modified());
            let stale = written.is_ok_and(|at| now.duration_since(at).is_ok_and(|d| d > age));
            if stale {
                // Another instance sweeping the same folder may have taken it first.
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(())
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where a stored file is. `UploadName` admits no separator and no dot-dot, so the join
    /// stays in the folder.
    pub fn path(&self, name: &UploadName) -> PathBuf {
        self.dir.join(name.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_stale_temp_files_are_swept_so_a_shared_folders_uploads_in_progress_stay() {
        let dir = tempfile::tempdir().unwrap();
        let folder = Folder::open(dir.path()).unwrap();
        let (old, young, image) = (".upload-old", ".upload-young", "kept.png");
        for file in [old, young, image] {
            std::fs::write(dir.path().join(file), b"bytes").unwrap();
        }
        let an_hour_ago = SystemTime::now() - STALE_TEMP - Duration::from_secs(60);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join(old))
            .unwrap()
            .set_modified(an_hour_ago)
            .unwrap();
        Folder::open(dir.path()).unwrap();
        assert!(!dir.path().join(old).exists(), "a crash's leftover goes");
        assert!(
            dir.path().join(young).exists(),
            "an upload in progress stays"
        );
        assert!(dir.path().join(image).exists());
        let later = SystemTime::now() + Duration::from_secs(1);
        folder.sweep(later, Duration::ZERO).unwrap();
        assert!(!dir.path().join(young).exists());
    }
}
