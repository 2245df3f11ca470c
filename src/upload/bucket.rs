//! `Bucket`: uploaded images in S3-compatible object storage (`--upload-store
//! s3://bucket/prefix`), for instances on different machines. Every call has a deadline
//! (`--upload-store-timeout`): a store that is down or stalled is an answer, never a wait.

use std::{
    fmt,
    path::Path as FilePath,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, SystemTime},
};

use bytes::Bytes;
use futures_util::{Stream, StreamExt as _, stream::BoxStream};
use object_store::{
    Attribute, Attributes, BackoffConfig, ClientOptions, GetOptions, ObjectStore,
    ObjectStoreExt as _, RetryConfig, aws::AmazonS3Builder, buffered::BufWriter, path::Path,
};
use tokio::{
    io::AsyncWriteExt as _,
    time::{Sleep, timeout},
};

use super::UploadName;

/// S3 takes parts of 5 MiB at least, but for the last; a smaller image is one PUT.
const PART: usize = 5 * 1024 * 1024;
/// A failed call is tried again this many times, within its deadline.
const RETRIES: usize = 2;

/// Where the images go: a bucket, and a folder in it (`s3://bucket/prefix`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoreUrl {
    bucket: String,
    prefix: Option<Path>,
}

impl StoreUrl {
    /// `s3://<bucket>` or `s3://<bucket>/<prefix>`; the bucket as S3 names them.
    pub fn parse(raw: &str) -> Result<StoreUrl, String> {
        let rest = raw
            .strip_prefix("s3://")
            .ok_or_else(|| format!("`{raw}` is not an s3://bucket/prefix URL"))?;
        let (bucket, prefix) = rest.split_once('/').unwrap_or((rest, ""));
        let named = (3..=63).contains(&bucket.len())
            && bucket
                .bytes()
                .all(|b| matches!(b, b'a'..=b'z' | b'0'..=b'9' | b'.' | b'-'));
        if !named {
            return Err(format!(
                "`{bucket}` is not a bucket name (3 to 63 of a-z, 0-9, `.` and `-`)"
            ));
        }
        let prefix = prefix.trim_end_matches('/');
        let prefix = if prefix.is_empty() {
            None
        } else if prefix.split('/').any(str::is_empty) {
            return Err(format!("`{prefix}` has an empty folder name"));
        } else {
            let path = Path::parse(prefix).map_err(|e| format!("`{prefix}`: {e}"))?;
            Some(path)
        };
        Ok(StoreUrl {
            bucket: bucket.to_owned(),
            prefix,
        })
    }
}

impl fmt::Display for StoreUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.prefix {
            Some(prefix) => write!(f, "s3://{}/{prefix}", self.bucket),
            None => write!(f, "s3://{}", self.bucket),
        }
    }
}

/// A secret that stays out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

/// How to reach the store. Unset fields come from the `AWS_*` environment, as the AWS tools
/// read it (a session token, a web identity, the instance's role).
#[derive(Debug, Clone)]
pub struct StoreSettings {
    pub url: StoreUrl,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<Secret>,
    /// A local endpoint over plain HTTP (MinIO on the same machine, a test server).
    pub allow_http: bool,
    pub timeout: Duration,
}

/// Why the store gave no image. The text is what a client is told.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("no such image")]
    NotFound,
    #[error("the image store is unavailable: try again later")]
    Unavailable,
}

#[derive(Debug, Clone)]
pub struct Bucket {
    store: Arc<dyn ObjectStore>,
    url: StoreUrl,
    timeout: Duration,
}

/// An image read from the store: its size and date, and its bytes as they come.
pub struct Object {
    pub len: u64,
    pub last_modified: SystemTime,
    pub body: IdleTimeout,
}

impl Bucket {
    pub fn build(settings: StoreSettings) -> Result<Bucket, object_store::Error> {
        let StoreSettings {
            url,
            endpoint,
            region,
            access_key_id,
            secret_access_key,
            allow_http,
            timeout,
        } = settings;
        // The deadline is ours, around each call (`within`), and a download's is per chunk
        // (`IdleTimeout`): the client's own timeout would cut off a slow reader's image.
        let client = ClientOptions::new()
            .with_connect_timeout(timeout)
            .with_timeout_disabled()
            .with_allow_http(allow_http);
        let retry = RetryConfig {
            backoff: BackoffConfig {
                init_backoff: Duration::from_millis(50),
                max_backoff: timeout / 4,
                base: 2.0,
            },
            max_retries: RETRIES,
            retry_timeout: timeout,
        };
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(&url.bucket)
            .with_client_options(client)
            .with_retry(retry);
        if let Some(endpoint) = endpoint {
            builder = builder.with_endpoint(endpoint);
        }
        if let Some(region) = region {
            builder = builder.with_region(region);
        }
        if let Some(id) = access_key_id {
            builder = builder.with_access_key_id(id);
        }
        if let Some(Secret(key)) = secret_access_key {
            builder = builder.with_secret_access_key(key);
        }
        Ok(Bucket {
            store: Arc::new(builder.build()?),
            url,
            timeout,
        })
    }

    pub fn url(&self) -> &StoreUrl {
        &self.url
    }

    fn location(&self, name: &UploadName) -> Path {
        match &self.url.prefix {
            Some(prefix) => prefix.clone().join(name.as_str()),
            None => Path::from(name.as_str()),
        }
    }

    /// Runs one call to the store within the deadline; any failure is `Unavailable` to the
    /// client, and logged here with its cause.
    async fn within<T>(
        &self,
        what: &str,
        name: &UploadName,
        call: impl Future<Output = object_store::Result<T>>,
        deadline: Duration,
    ) -> Result<T, StoreError> {
        match timeout(deadline, call).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(object_store::Error::NotFound { .. })) => Err(StoreError::NotFound),
            Ok(Err(e)) => {
                tracing::warn!(store = %self.url, image = %name, error = %e, "{what} failed");
                Err(StoreError::Unavailable)
            }
            Err(_) => {
                tracing::warn!(store = %self.url, image = %name, ?deadline, "{what} timed out");
                Err(StoreError::Unavailable)
            }
        }
    }

    /// Whether the store holds the image: `NotFound` if not.
    pub async fn head(&self, name: &UploadName) -> Result<Meta, StoreError> {
        let location = self.location(name);
        let meta = self
            .within(
                "asking the store",
                name,
                self.store.head(&location),
                self.timeout,
            )
            .await?;
        Ok(Meta {
            last_modified: system_time(meta.last_modified.timestamp()),
        })
    }

    /// Copies a received file to the store under its name, in one PUT or in 5 MiB parts,
    /// holding at most one part in memory.
    pub async fn put(
        &self,
        name: &UploadName,
        file: &FilePath,
        len: usize,
    ) -> Result<(), StoreError> {
        let mut attributes = Attributes::new();
        attributes.insert(Attribute::ContentType, name.kind().content_type().into());
        attributes.insert(Attribute::CacheControl, super::IMMUTABLE.into());
        let mut writer = BufWriter::with_capacity(self.store.clone(), self.location(name), PART)
            .with_attributes(attributes);
        let copy = async {
            let mut file = tokio::fs::File::open(file).await?;
            tokio::io::copy(&mut file, &mut writer).await?;
            writer.shutdown().await
        };
        // A deadline for each part: a large image on a slow link is not a store that is down.
        let parts = u32::try_from(len / PART + 1).unwrap_or(u32::MAX);
        let io = |r: std::io::Result<()>| {
            r.map_err(|e| object_store::Error::Generic {
                store: "S3",
                source: Box::new(e),
            })
        };
        self.within(
            "storing",
            name,
            async { io(copy.await) },
            self.timeout * parts,
        )
        .await
    }

    /// Opens the image for reading: found within the deadline, then each chunk within it.
    pub async fn get(&self, name: &UploadName) -> Result<Object, StoreError> {
        let location = self.location(name);
        let got = self
            .within(
                "reading",
                name,
                self.store.get_opts(&location, GetOptions::default()),
                self.timeout,
            )
            .await?;
        let (len, last_modified) = (got.meta.size, got.meta.last_modified.timestamp());
        Ok(Object {
            len,
            last_modified: system_time(last_modified),
            body: IdleTimeout::new(got.into_stream(), self.timeout, self.url.clone()),
        })
    }
}

/// What `head` tells of an image.
#[derive(Debug, Clone, Copy)]
pub struct Meta {
    pub last_modified: SystemTime,
}

fn system_time(unix: i64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(u64::try_from(unix).unwrap_or(0))
}

/// A download that fails when the store sends nothing for `idle` while we wait for it. The
/// clock runs only while the response waits on the store, not while it waits on a slow
/// client, so a slow reader still gets the whole image.
pub struct IdleTimeout {
    inner: BoxStream<'static, object_store::Result<Bytes>>,
    idle: Duration,
    url: StoreUrl,
    sleep: Option<Pin<Box<Sleep>>>,
    done: bool,
}

/// Why a download stopped halfway; hyper then ends the response early.
#[derive(Debug, thiserror::Error)]
#[error("the image store stopped sending")]
pub struct Stalled;

impl IdleTimeout {
    fn new(
        inner: BoxStream<'static, object_store::Result<Bytes>>,
        idle: Duration,
        url: StoreUrl,
    ) -> Self {
        IdleTimeout {
            inner,
            idle,
            url,
            sleep: None,
            done: false,
        }
    }
}

impl Stream for IdleTimeout {
    type Item = Result<Bytes, Stalled>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.done {
            return Poll::Ready(None);
        }
        match this.inner.poll_next_unpin(cx) {
            Poll::Ready(Some(Ok(chunk))) => {
                this.sleep = None;
                return Poll::Ready(Some(Ok(chunk)));
            }
            Poll::Ready(Some(Err(e))) => {
                tracing::warn!(store = %this.url, error = %e, "reading an image failed");
                this.done = true;
                return Poll::Ready(Some(Err(Stalled)));
            }
            Poll::Ready(None) => {
                this.done = true;
                return Poll::Ready(None);
            }
            Poll::Pending => {}
        }
        let idle = this.idle;
        let sleep = this
            .sleep
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(idle)));
        match sleep.as_mut().poll(cx) {
            Poll::Ready(()) => {
                tracing::warn!(store = %this.url, ?idle, "the store stopped sending an image");
                this.done = true;
                Poll::Ready(Some(Err(Stalled)))
            }
            Poll::Pending => Poll::Pending,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_store_url_is_a_bucket_and_an_optional_prefix() {
        let url = StoreUrl::parse("s3://chat-images/prod/uploads/").unwrap();
        assert_eq!(url.bucket, "chat-images");
        assert_eq!(url.to_string(), "s3://chat-images/prod/uploads");
        assert_eq!(
            StoreUrl::parse("s3://chat-images").unwrap().to_string(),
            "s3://chat-images"
        );
        for bad in [
            "chat-images",
            "https://s3.example/chat-images",
            "s3://",
            "s3://ab",
            "s3://Chat_Images",
            "s3://chat-images/a/../b",
            "s3://chat-images//b",
        ] {
            assert!(StoreUrl::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_secret_stays_out_of_debug_output() {
        let secret = Secret("hunter2".into());
        assert_eq!(format!("{secret:?}"), "Secret(..)");
    }
}
