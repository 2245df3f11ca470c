//! `Uploads`: where uploaded images are kept and found, whichever way: a folder (`--upload-dir`,
//! which instances on one machine or one NFS export share), or an S3-compatible bucket
//! (`--upload-store`) with the folder holding only the uploads still arriving.

use std::{
    io,
    path::{Path, PathBuf},
    pin::Pin,
    sync::Arc,
    time::{Duration, SystemTime},
};

use super::{
    ImageNameError, Intake, Received, UploadName,
    bucket::{Bucket, Object, StoreError, StoreSettings, StoreUrl},
    folder::Folder,
    known::Known,
};

/// Where uploads go, from the flags.
#[derive(Debug, Clone)]
pub struct UploadSettings {
    /// `--upload-dir`: the images, or with a store the uploads still arriving.
    pub dir: PathBuf,
    /// `--max-upload-bytes`.
    pub max_bytes: usize,
    /// `--upload-known-images`: names remembered as stored.
    pub known_images: usize,
    /// `--upload-store-timeout`: how long the store, or the folder when an `image` message
    /// asks it (an NFS server may stall), has to answer.
    pub timeout: Duration,
    /// `--upload-store` and its settings.
    pub store: Option<StoreSettings>,
}

#[derive(Debug)]
pub struct Uploads {
    folder: Folder,
    bucket: Option<Bucket>,
    known: Arc<Known>,
    max_bytes: usize,
    timeout: Duration,
}

/// Why a received upload was not kept: the disk's or the store's failure, not the client's.
#[derive(Debug, thiserror::Error)]
pub enum KeepError {
    #[error("storing the upload: {0}")]
    Io(#[from] io::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Why an `image` message names no image: the client's mistake, or the store's failure.
#[derive(Debug, Clone, thiserror::Error)]
pub enum LookupError {
    #[error(transparent)]
    Name(#[from] ImageNameError),
    #[error(transparent)]
    Store(StoreError),
}

/// A question to the store under way: it owns what it needs, so a socket can hold it.
pub type Lookup = Pin<Box<dyn Future<Output = Result<UploadName, LookupError>> + Send>>;

/// The answer to "is this image stored?": at once (the folder, or a name already known), or
/// once the store has answered.
pub enum Found {
    Now(UploadName),
    Later(Lookup),
}

/// A stored image, ready to serve.
pub enum Image {
    File(PathBuf),
    Object(Object),
    /// The client's copy, dated this, is current (`If-Modified-Since`).
    NotModified(SystemTime),
}

impl Uploads {
    /// Opens the folder (created if missing, a crash's stale temp files swept) and, with
    /// `--upload-store`, the store's client; the store is first asked when an image is.
    pub fn open(settings: UploadSettings) -> anyhow::Result<Self> {
        let folder = Folder::open(&settings.dir)?;
        let bucket = match settings.store {
            Some(store) => Some(Bucket::build(store)?),
            None => None,
        };
        Ok(Uploads {
            folder,
            bucket,
            known: Arc::new(Known::new(settings.known_images)),
            max_bytes: settings.max_bytes,
            timeout: settings.timeout,
        })
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The largest request body `POST /upload` reads: the file plus its multipart framing.
    pub fn body_limit(&self) -> usize {
        super::body_limit(self.max_bytes)
    }

    pub fn dir(&self) -> &Path {
        self.folder.dir()
    }

    /// The bucket the images are kept in, if not the folder.
    pub fn store(&self) -> Option<&StoreUrl> {
        self.bucket.as_ref().map(Bucket::url)
    }

    /// Starts taking an upload: a temp file in the folder, which becomes the image or goes.
    pub async fn intake(&self) -> io::Result<Intake> {
        Intake::start(self.folder.dir().to_owned(), self.max_bytes).await
    }

    /// Keeps a received upload under its name: renamed into the folder, or copied to the store
    /// (and the temp file removed either way).
    pub async fn keep(&self, received: Received) -> Result<UploadName, KeepError> {
        let name = match &self.bucket {
            None => received.rename_into(self.folder.dir().to_owned()).await?,
            Some(bucket) => {
                bucket
                    .put(&received.name, &received.temp, received.len)
                    .await?;
                received.name
            }
        };
        self.known.insert(&name);
        Ok(name)
    }

    /// The stored image an `image` message's `/uploads/<name>` URL names. A name this instance
    /// knows is stored answers at once; otherwise the folder is looked at or the store asked,
    /// off the socket's thread and within the deadline.
    pub fn find(&self, url: &str) -> Result<Found, ImageNameError> {
        let name = UploadName::from_url(url)?;
        if self.known.contains(&name) {
            return Ok(Found::Now(name));
        }
        let (known, url) = (self.known.clone(), url.to_owned());
        let Some(bucket) = &self.bucket else {
            let (path, deadline) = (self.folder.path(&name), self.timeout);
            return Ok(Found::Later(Box::pin(async move {
                // A look at a shared folder is a call to its file server, which may stall.
                let look = tokio::task::spawn_blocking(move || path.is_file());
                match tokio::time::timeout(deadline, look).await {
                    Ok(Ok(true)) => {
                        known.insert(&name);
                        Ok(name)
                    }
                    Ok(Ok(false)) => Err(ImageNameError::NotStored(url).into()),
                    Ok(Err(_)) | Err(_) => {
                        tracing::warn!(image = %name, ?deadline, "the upload folder did not answer");
                        Err(LookupError::Store(StoreError::Unavailable))
                    }
                }
            })));
        };
        let bucket = bucket.clone();
        Ok(Found::Later(Box::pin(async move {
            match bucket.head(&name).await {
                Ok(_) => {
                    known.insert(&name);
                    Ok(name)
                }
                Err(StoreError::NotFound) => Err(ImageNameError::NotStored(url).into()),
                Err(e) => Err(LookupError::Store(e)),
            }
        })))
    }

    /// Opens a stored image to serve it; `NotModified` when the client's copy, dated
    /// `since`, is current.
    pub async fn image(
        &self,
        name: &UploadName,
        since: Option<SystemTime>,
    ) -> Result<Image, StoreError> {
        let Some(bucket) = &self.bucket else {
            // The file server answers the dates itself.
            return Ok(Image::File(self.folder.path(name)));
        };
        if let Some(since) = since {
            let meta = bucket.head(name).await?;
            if meta.last_modified <= since {
                return Ok(Image::NotModified(meta.last_modified));
            }
        }
        let object = bucket.get(name).await?;
        self.known.insert(name);
        Ok(Image::Object(object))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::upload::ImageKind;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    fn in_dir(dir: &Path) -> Uploads {
        Uploads::open(UploadSettings {
            dir: dir.to_owned(),
            max_bytes: 100,
            known_images: 10,
            timeout: Duration::from_secs(5),
            store: None,
        })
        .unwrap()
    }

    async fn store(uploads: &Uploads, bytes: &[u8]) -> UploadName {
        let mut intake = uploads.intake().await.unwrap();
        intake.push(bytes).await.unwrap();
        uploads.keep(intake.finish().await.unwrap()).await.unwrap()
    }

    /// The image an `image` message names, once the folder has answered.
    async fn found(uploads: &Uploads, url: &str) -> Result<UploadName, String> {
        let found = uploads.find(url).map_err(|e| e.to_string())?;
        match found {
            Found::Now(name) => Ok(name),
            Found::Later(lookup) => lookup.await.map_err(|e| e.to_string()),
        }
    }

    #[tokio::test]
    async fn a_stored_file_is_found_under_its_hash_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = in_dir(dir.path());
        let name = store(&uploads, PNG).await;
        assert_eq!(name, UploadName::for_content(PNG, ImageKind::Png));
        assert_eq!(std::fs::read(dir.path().join(name.as_str())).unwrap(), PNG);
        assert_eq!(store(&uploads, PNG).await, name, "same content, same file");
        let files: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, [std::ffi::OsString::from(name.as_str())]);
    }

    #[tokio::test]
    async fn an_image_url_finds_only_a_stored_file_and_says_why_not() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = in_dir(dir.path());
        let name = store(&uploads, PNG).await;
        assert_eq!(found(&uploads, &name.url()).await, Ok(name.clone()));
        assert!(
            matches!(uploads.find(&name.url()), Ok(Found::Now(_))),
            "a name kept here is known without a look"
        );
        let other = UploadName::for_content(b"other", ImageKind::Png).url();
        assert_eq!(
            found(&uploads, &other).await.unwrap_err(),
            format!("no uploaded image {other}: upload it with POST /upload first")
        );
        assert_eq!(
            found(&uploads, "https://x.example/a.png")
                .await
                .unwrap_err(),
            "an image must be an /uploads/<name> URL from POST /upload"
        );
        assert_eq!(
            found(&uploads, "/uploads/a.png").await.unwrap_err(),
            "\"a.png\" is not the name of an uploaded image"
        );
    }

    #[tokio::test]
    async fn two_instances_sharing_a_folder_find_each_others_images() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (in_dir(dir.path()), in_dir(dir.path()));
        let url = UploadName::for_content(PNG, ImageKind::Png).url();
        assert!(
            found(&b, &url).await.is_err(),
            "not known before it is stored"
        );
        let name = store(&a, PNG).await;
        assert_eq!(found(&b, &url).await, Ok(name), "a miss is not remembered");
    }
}
