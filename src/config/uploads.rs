//! The flags that say where uploaded images are kept: a folder, which instances on one machine
//! or one NFS export share, or an S3-compatible store for instances on different machines.

use std::{path::PathBuf, time::Duration};

use super::{Config, parse_seconds};
use crate::upload::{Secret, StoreSettings, StoreUrl, UploadSettings};

#[derive(Debug, Clone, clap::Args)]
pub struct UploadFlags {
    /// Directory of uploaded images [default: <data-dir>/uploads]. Instances that share it
    /// (one machine, an NFS export) serve each other's images; with --upload-store it only
    /// holds uploads still arriving.
    #[arg(long, env = "PASSERBY_UPLOAD_DIR")]
    pub upload_dir: Option<PathBuf>,

    /// Keep uploaded images in S3-compatible object storage, s3://bucket/prefix, for
    /// instances on different machines; unset, they are files in --upload-dir.
    #[arg(long, env = "PASSERBY_UPLOAD_STORE", value_parser = StoreUrl::parse)]
    pub upload_store: Option<StoreUrl>,

    /// The store's endpoint, e.g. http://127.0.0.1:9000 for MinIO [default: AWS's, from the
    /// region].
    #[arg(long, env = "PASSERBY_UPLOAD_STORE_ENDPOINT")]
    pub upload_store_endpoint: Option<String>,

    /// The store's region [default: AWS_DEFAULT_REGION, else us-east-1].
    #[arg(long, env = "PASSERBY_UPLOAD_STORE_REGION")]
    pub upload_store_region: Option<String>,

    /// The store's access key id [default: from the AWS environment or the machine's role].
    #[arg(long, env = "AWS_ACCESS_KEY_ID")]
    pub upload_store_access_key_id: Option<String>,

    /// The store's secret key; prefer the environment, which `ps` does not show.
    #[arg(long, env = "AWS_SECRET_ACCESS_KEY", hide_env_values = true, value_parser = parse_secret)]
    pub upload_store_secret_access_key: Option<Secret>,

    /// Let the store's endpoint be plain HTTP (a store on this machine or a private network).
    #[arg(long, env = "PASSERBY_UPLOAD_STORE_ALLOW_HTTP")]
    pub upload_store_allow_http: bool,

    /// Seconds the store has to answer each call (and to send each chunk of an image); past
    /// it the upload or the image gets 503, an `image` message an `error`. An `image`
    /// message's look in --upload-dir (a file server may stall too) has as long.
    #[arg(long, env = "PASSERBY_UPLOAD_STORE_TIMEOUT", default_value = "10", value_parser = parse_seconds)]
    pub upload_store_timeout: Duration,

    /// Image names remembered as stored, so an `image` message naming one asks the folder or
    /// the store once; the oldest is forgotten first.
    #[arg(long, env = "PASSERBY_UPLOAD_KNOWN_IMAGES", default_value_t = 10_000)]
    pub upload_known_images: usize,
}

fn parse_secret(s: &str) -> Result<Secret, String> {
    Ok(Secret(s.to_owned()))
}

impl Config {
    /// Where uploads are kept: --upload-dir, or <data-dir>/uploads.
    pub fn upload_dir(&self) -> PathBuf {
        self.upload
            .upload_dir
            .clone()
            .unwrap_or_else(|| self.data_dir.join("uploads"))
    }

    pub fn uploads(&self) -> UploadSettings {
        let flags = &self.upload;
        UploadSettings {
            dir: self.upload_dir(),
            max_bytes: self.max_upload_bytes,
            known_images: flags.upload_known_images,
            timeout: flags.upload_store_timeout,
            store: flags.upload_store.clone().map(|url| StoreSettings {
                url,
                endpoint: flags.upload_store_endpoint.clone(),
                region: flags.upload_store_region.clone(),
                access_key_id: flags.upload_store_access_key_id.clone(),
                secret_access_key: flags.upload_store_secret_access_key.clone(),
                allow_http: flags.upload_store_allow_http,
                timeout: flags.upload_store_timeout,
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser as _;

    use super::*;

    #[test]
    fn uploads_are_files_in_the_data_dir_unless_a_folder_or_a_store_is_named() {
        let c = Config::parse_from(["passerby", "--data-dir", "/srv/chat"]);
        let settings = c.uploads();
        assert_eq!(settings.dir, PathBuf::from("/srv/chat/uploads"));
        assert!(settings.store.is_none());
        assert_eq!(settings.known_images, 10_000);
        assert_eq!(c.upload.upload_store_timeout, Duration::from_secs(10));

        let c = Config::parse_from([
            "passerby",
            "--upload-dir",
            "/mnt/shared/uploads",
            "--upload-store",
            "s3://chat-images/prod",
            "--upload-store-allow-http",
        ]);
        let settings = c.uploads();
        assert_eq!(settings.dir, PathBuf::from("/mnt/shared/uploads"));
        let store = settings.store.expect("a store");
        assert_eq!(store.url.to_string(), "s3://chat-images/prod");
        assert!(store.allow_http);
        assert!(Config::try_parse_from(["passerby", "--upload-store", "/mnt/x"]).is_err());
    }
}
