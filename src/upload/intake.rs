//! `Intake`: one upload on its way to the disk. Each chunk is hashed and written to a temp file
//! as it arrives, so an upload holds a small buffer, never the whole file, and a refused or
//! abandoned upload leaves nothing behind: the temp file goes when the `Intake` is dropped.
//! A finished intake is a `Received` file, which `Uploads::keep` renames into the folder or
//! copies to the object store.

use std::{io, path::PathBuf};

use sha2::{Digest, Sha256};
use tempfile::TempPath;
use tokio::io::{AsyncWriteExt as _, BufWriter};

use super::{ImageKind, Refusal, TEMP_PREFIX, UploadName};

/// Bytes gathered before a write reaches the file: few enough to keep thousands of uploads
/// cheap, enough that the blocking pool sees a handful of writes per megabyte.
const WRITE_BUFFER: usize = 64 * 1024;

/// Why an upload was refused, or could not be kept.
#[derive(Debug, thiserror::Error)]
pub enum IntakeError {
    #[error("the image is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the file is empty")]
    Empty,
    /// The disk's failure, not the client's.
    #[error("storing the upload: {0}")]
    Io(#[from] io::Error),
}

/// Takes an upload chunk by chunk: refuses it as soon as it is too large or its first bytes
/// are not an image, so a refused upload is never read to the end.
#[derive(Debug)]
pub struct Intake {
    max: usize,
    len: usize,
    /// The first `SNIFF_LEN` bytes, which say what the file is.
    head: Vec<u8>,
    kind: Option<ImageKind>,
    hasher: Sha256,
    /// tokio's `File` hands each write to the blocking pool, off the async threads.
    file: BufWriter<tokio::fs::File>,
    /// Removes the temp file when dropped, unless it was renamed into place.
    temp: TempPath,
}

impl Intake {
    /// Opens a temp file in `dir` for an upload of at most `max` bytes.
    pub async fn start(dir: PathBuf, max: usize) -> io::Result<Intake> {
        let temp = tokio::task::spawn_blocking(move || {
            tempfile::Builder::new()
                .prefix(TEMP_PREFIX)
                .tempfile_in(dir)
        })
        .await
        .map_err(io::Error::other)??;
        let (file, temp) = temp.into_parts();
        Ok(Intake {
            max,
            len: 0,
            head: Vec::with_capacity(ImageKind::SNIFF_LEN),
            kind: None,
            hasher: Sha256::new(),
            file: BufWriter::with_capacity(WRITE_BUFFER, tokio::fs::File::from_std(file)),
            temp,
        })
    }

    /// Bytes taken so far.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Where the bytes are going; the file is removed when the `Intake` is dropped.
    pub fn temp_path(&self) -> &std::path::Path {
        &self.temp
    }

    pub async fn push(&mut self, chunk: &[u8]) -> Result<(), IntakeError> {
        if self.len.saturating_add(chunk.len()) > self.max {
            return Err(IntakeError::TooLarge { max: self.max });
        }
        if self.kind.is_none() {
            let wanted = ImageKind::SNIFF_LEN - self.head.len();
            self.head
                .extend_from_slice(&chunk[..wanted.min(chunk.len())]);
            if self.head.len() == ImageKind::SNIFF_LEN {
                self.kind = Some(ImageKind::sniff(&self.head)?);
            }
        }
        self.len += chunk.len();
        self.hasher.update(chunk);
        self.file.write_all(chunk).await?;
        Ok(())
    }

    /// The whole file, flushed to the disk, and the name its content gives it. A file
    /// shorter than `SNIFF_LEN` is judged here.
    pub async fn finish(mut self) -> Result<Received, IntakeError> {
        if self.len == 0 {
            return Err(IntakeError::Empty);
        }
        let kind = match self.kind {
            Some(kind) => kind,
            None => ImageKind::sniff(&self.head)?,
        };
        self.file.flush().await?;
        self.file.get_ref().sync_all().await?;
        let Intake {
            hasher, temp, len, ..
        } = self;
        Ok(Received {
            name: UploadName::for_hash(hasher, kind),
            len,
            temp,
        })
    }
}

/// A whole upload in its temp file, not yet kept: dropping it removes the file.
#[derive(Debug)]
pub struct Received {
    pub name: UploadName,
    pub len: usize,
    pub temp: TempPath,
}

impl Received {
    /// Moves the file into `dir` under its name. The rename means a reader never sees half a
    /// file, on a shared folder too (a rename within one NFS export is atomic); a file already
    /// stored under that name is the same content, so the temp file just goes.
    pub async fn rename_into(self, dir: PathBuf) -> io::Result<UploadName> {
        let Received { name, temp, .. } = self;
        let target = dir.join(name.as_str());
        tokio::task::spawn_blocking(move || {
            if target.is_file() {
                return Ok(());
            }
            temp.persist(&target).map_err(|e| e.error)
        })
        .await
        .map_err(io::Error::other)??;
        Ok(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn temp_files(dir: &std::path::Path) -> Vec<String> {
        std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.starts_with(TEMP_PREFIX))
            .collect()
    }

    #[tokio::test]
    async fn intake_stops_at_the_limit_and_at_the_first_bytes() {
        let dir = tempfile::tempdir().unwrap();
        let start = |max| Intake::start(dir.path().to_owned(), max);
        let mut intake = start(16).await.unwrap();
        intake.push(&PNG[..4]).await.unwrap();
        intake.push(&PNG[4..]).await.unwrap();
        assert!(matches!(
            intake.push(&[0; 3]).await,
            Err(IntakeError::TooLarge { max: 16 })
        ));

        let mut intake = start(1 << 20).await.unwrap();
        assert!(matches!(
            intake.push(b"<svg onload='alert(1)'>").await,
            Err(IntakeError::Refused(Refusal::Svg))
        ));
        let empty = start(10).await.unwrap();
        assert!(matches!(empty.finish().await, Err(IntakeError::Empty)));
        let mut short = start(10).await.unwrap();
        short.push(b"GIF89a").await.unwrap();
        assert_eq!(short.finish().await.unwrap().name.kind(), ImageKind::Gif);
    }

    #[tokio::test]
    async fn the_hash_of_streamed_chunks_is_the_hash_of_the_whole() {
        let dir = tempfile::tempdir().unwrap();
        let mut whole = PNG.to_vec();
        whole.extend((0..200_000u32).map(|i| (i % 251) as u8));
        let mut intake = Intake::start(dir.path().to_owned(), whole.len())
            .await
            .unwrap();
        // Uneven chunks, one of them splitting the sniffed head.
        for chunk in [&whole[..5], &whole[5..70_000], &whole[70_000..]] {
            intake.push(chunk).await.unwrap();
        }
        assert_eq!(intake.len(), whole.len());
        let received = intake.finish().await.unwrap();
        assert_eq!(received.len, whole.len());
        let name = received.rename_into(dir.path().to_owned()).await.unwrap();
        assert_eq!(name, UploadName::for_content(&whole, ImageKind::Png));
        assert_eq!(
            std::fs::read(dir.path().join(name.as_str())).unwrap(),
            whole
        );
        assert!(temp_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn bytes_reach_the_temp_file_as_they_come_and_a_dropped_intake_removes_it() {
        let dir = tempfile::tempdir().unwrap();
        let mut intake = Intake::start(dir.path().to_owned(), 1 << 20).await.unwrap();
        let temp = intake.temp_path().to_owned();
        assert_eq!(temp_files(dir.path()).len(), 1);
        intake.push(PNG).await.unwrap();
        // Each write waits for the one before it, so two of these three are on disk.
        for _ in 0..3 {
            intake.push(&[7; WRITE_BUFFER]).await.unwrap();
        }
        let on_disk = std::fs::metadata(&temp).unwrap().len();
        assert!(
            on_disk >= 2 * WRITE_BUFFER as u64,
            "only {on_disk} bytes written: the upload is held in memory"
        );
        drop(intake);
        assert!(!temp.exists());
        assert!(temp_files(dir.path()).is_empty());
    }

    #[tokio::test]
    async fn a_refused_upload_leaves_no_temp_file() {
        let dir = tempfile::tempdir().unwrap();
        let mut intake = Intake::start(dir.path().to_owned(), 1 << 20).await.unwrap();
        assert!(intake.push(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n").await.is_err());
        drop(intake);
        assert!(temp_files(dir.path()).is_empty());
    }
}
