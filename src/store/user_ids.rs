//! `UserIds`: user ids that are never handed out twice for the life of the data dir.
//!
//! Writing the counter on every sign-in would cost an fsync each. Instead the file holds a
//! reservation: the first id not yet handed out *or reserved*. We reserve ids in blocks, so
//! after a crash the unused rest of a block is skipped, never reused.

use std::{
    fs,
    io::{self, Write},
    path::{Path, PathBuf},
    sync::Mutex,
};

use anyhow::Context;

const BLOCK: u64 = 64;
const FILE_NAME: &str = "user_ids";

/// Every id was handed out: a new user would get one again. Sign-in answers 503.
#[derive(Debug, thiserror::Error)]
#[error("no user ids are left to hand out")]
pub struct IdsExhausted;

#[derive(Debug, thiserror::Error)]
pub enum AllocateError {
    #[error(transparent)]
    Exhausted(#[from] IdsExhausted),
    #[error("writing the user id reservation: {0}")]
    Io(#[from] io::Error),
}

#[derive(Debug)]
pub struct UserIds {
    path: PathBuf,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    next: u64,
    reserved_until: u64,
}

impl UserIds {
    pub fn open(data_dir: &Path) -> anyhow::Result<Self> {
        let path = data_dir.join(FILE_NAME);
        let first = match fs::read_to_string(&path) {
            Ok(text) => text
                .trim()
                .parse::<u64>()
                .with_context(|| format!("{} is corrupt: {text:?}", path.display()))?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => 1,
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        Ok(UserIds {
            path,
            state: Mutex::new(State {
                next: first,
                reserved_until: first,
            }),
        })
    }

    /// How many ids were handed out (or skipped) so far: the seed's sign-in count.
    pub fn issued(&self) -> u64 {
        self.lock().next.saturating_sub(1)
    }

    /// The next id. It is on disk as reserved before it is returned. Checked: `u64::MAX`
    /// is never handed out, it is where the reservation stops.
    pub fn allocate(&self) -> Result<u64, AllocateError> {
        let mut state = self.lock();
        if state.next >= state.reserved_until {
            let until = state.next.saturating_add(BLOCK);
            if until == state.next {
                return Err(IdsExhausted.into());
            }
            write_atomically(&self.path, &format!("{until}\n"))?;
            state.reserved_until = until;
        }
        let id = state.next;
        state.next = id.checked_add(1).ok_or(IdsExhausted)?;
        Ok(id)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Replaces the file with `text` so that a crash leaves the old or the new one, whole.
pub(super) fn write_atomically(path: &Path, text: &str) -> io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut file = fs::File::create(&tmp)?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    fs::rename(&tmp, path)?;
    if let Some(dir) = path.parent() {
        fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_start_at_one_and_increase() {
        let dir = tempfile::tempdir().unwrap();
        let ids = UserIds::open(dir.path()).unwrap();
        assert_eq!(ids.issued(), 0);
        assert_eq!(ids.allocate().unwrap(), 1);
        assert_eq!(ids.allocate().unwrap(), 2);
        assert_eq!(ids.issued(), 2);
    }

    #[test]
    fn ids_are_never_reused_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let before: Vec<u64> = {
            let ids = UserIds::open(dir.path()).unwrap();
            (0..BLOCK + 3).map(|_| ids.allocate().unwrap()).collect()
        };
        let ids = UserIds::open(dir.path()).unwrap();
        let after = ids.allocate().unwrap();
        assert!(after > *before.last().unwrap());
    }

    #[test]
    fn at_the_top_of_the_range_sign_in_fails_instead_of_wrapping() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), format!("{}", u64::MAX - 2)).unwrap();
        let ids = UserIds::open(dir.path()).unwrap();
        assert_eq!(ids.allocate().unwrap(), u64::MAX - 2);
        assert_eq!(ids.allocate().unwrap(), u64::MAX - 1);
        for _ in 0..2 {
            assert!(matches!(ids.allocate(), Err(AllocateError::Exhausted(_))));
        }
        assert_eq!(ids.issued(), u64::MAX - 1);
        let reopened = UserIds::open(dir.path()).unwrap();
        assert!(
            matches!(reopened.allocate(), Err(AllocateError::Exhausted(_))),
            "the reservation on disk is the top too"
        );
    }

    #[test]
    fn a_corrupt_counter_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(FILE_NAME), "banana").unwrap();
        let err = UserIds::open(dir.path()).unwrap_err().to_string();
        assert!(err.contains("corrupt"), "{err}");
    }
}
