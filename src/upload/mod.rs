//! Uploaded images: which bytes count as an image (`ImageKind::sniff`) and how a stored file
//! is named (`UploadName`). `uploads` keeps them, in a folder several instances may share
//! (`folder`) or in S3-compatible object storage (`bucket`), and remembers which exist
//! (`known`); `intake` streams one upload to a temp file; `limits` bounds what one user may
//! upload.
//!
//! A file is named by the SHA-256 of its content, so the same image uploaded twice is stored
//! once, and a name can be checked strictly: 64 lowercase hex digits, a dot, a known extension.
//! Nothing else ever reaches the file system or the store, so no path can climb out.

mod bucket;
mod folder;
mod intake;
mod known;
mod limits;
mod uploads;

use std::fmt;

use sha2::{Digest, Sha256};

pub use bucket::{Object, Secret, Stalled, StoreError, StoreSettings, StoreUrl};
pub use folder::STALE_TEMP;
pub use intake::{Intake, IntakeError, Received};
pub use limits::{Refused, Slot, UploadLimits, UploadPolicy};
pub use uploads::{Found, Image, KeepError, Lookup, LookupError, UploadSettings, Uploads};

/// A stored file never changes under its name (the name is its hash), so caches keep it.
pub const IMMUTABLE: &str = "public, max-age=31536000, immutable";

/// Where uploads are served and what an `image` message must name.
pub const URL_PREFIX: &str = "/uploads/";

/// The multipart framing around the file (boundaries, part headers, a short field or two) is
/// allowed this much on top of `--max-upload-bytes`; nginx's `client_max_body_size` is the sum.
pub const MULTIPART_SLACK: usize = 64 * 1024;

/// Temp files start with this, so a crash's leftovers are recognised and swept at start.
const TEMP_PREFIX: &str = ".upload-";

/// The image formats accepted, recognised by their first bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ImageKind {
    Png,
    Jpeg,
    Gif,
    Webp,
}

/// Why bytes are not an image we accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// SVG is XML that may carry script, so it is refused even though it draws a picture.
    #[error("SVG images are not accepted; send PNG, JPEG, GIF or WebP")]
    Svg,
    #[error("not a PNG, JPEG, GIF or WebP image")]
    NotAnImage,
}

impl ImageKind {
    /// Bytes needed to tell the formats apart (WebP's `RIFF....WEBP` is the longest).
    pub const SNIFF_LEN: usize = 12;

    /// What the first bytes of a file say it is. The file name and the declared type are not
    /// asked: both are the client's say-so.
    pub fn sniff(head: &[u8]) -> Result<ImageKind, Refusal> {
        if head.starts_with(b"\x89PNG\r\n\x1a\n") {
            Ok(ImageKind::Png)
        } else if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
            Ok(ImageKind::Jpeg)
        } else if head.starts_with(b"GIF87a") || head.starts_with(b"GIF89a") {
            Ok(ImageKind::Gif)
        } else if head.len() >= 12 && head.starts_with(b"RIFF") && &head[8..12] == b"WEBP" {
            Ok(ImageKind::Webp)
        } else if looks_like_svg(head) {
            Err(Refusal::Svg)
        } else {
            Err(Refusal::NotAnImage)
        }
    }

    pub fn extension(self) -> &'static str {
        match self {
            ImageKind::Png => "png",
            ImageKind::Jpeg => "jpg",
            ImageKind::Gif => "gif",
            ImageKind::Webp => "webp",
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            ImageKind::Png => "image/png",
            ImageKind::Jpeg => "image/jpeg",
            ImageKind::Gif => "image/gif",
            ImageKind::Webp => "image/webp",
        }
    }

    fn from_extension(ext: &str) -> Option<ImageKind> {
        [
            ImageKind::Png,
            ImageKind::Jpeg,
            ImageKind::Gif,
            ImageKind::Webp,
        ]
        .into_iter()
        .find(|kind| kind.extension() == ext)
    }
}

/// Only for a clearer refusal: anything that is not one of the four formats is refused anyway.
fn looks_like_svg(head: &[u8]) -> bool {
    let text = String::from_utf8_lossy(head)
        .trim_start_matches('\u{feff}')
        .trim_start()
        .to_ascii_lowercase();
    text.starts_with("<svg") || text.starts_with("<?xml") || text.starts_with("<!doctype svg")
}

/// A stored file's name: the SHA-256 of its content in lowercase hex, then its extension.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct UploadName {
    name: String,
    kind: ImageKind,
}

impl UploadName {
    pub fn for_content(bytes: &[u8], kind: ImageKind) -> Self {
        UploadName::for_hash(Sha256::new_with_prefix(bytes), kind)
    }

    /// The name of the content fed to `hasher`, for a file hashed as it streamed in.
    pub fn for_hash(hasher: Sha256, kind: ImageKind) -> Self {
        UploadName {
            name: format!("{:x}.{}", hasher.finalize(), kind.extension()),
            kind,
        }
    }

    /// Exactly 64 lowercase hex digits, a dot and a known extension; nothing else.
    pub fn parse(raw: &str) -> Result<Self, ImageNameError> {
        let refuse = || ImageNameError::NotAName(raw.to_owned());
        let (hash, ext) = raw.split_once('.').ok_or_else(refuse)?;
        let hex = hash.len() == 64 && hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'));
        let kind = ImageKind::from_extension(ext)
            .filter(|_| hex)
            .ok_or_else(refuse)?;
        Ok(UploadName {
            name: raw.to_owned(),
            kind,
        })
    }

    /// The name inside an `/uploads/<name>` URL, as an `image` message carries it.
    pub fn from_url(url: &str) -> Result<Self, ImageNameError> {
        url.strip_prefix(URL_PREFIX)
            .ok_or(ImageNameError::NotAnUploadUrl)
            .and_then(UploadName::parse)
    }

    pub fn as_str(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> ImageKind {
        self.kind
    }

    pub fn url(&self) -> String {
        format!("{URL_PREFIX}{}", self.name)
    }
}

impl fmt::Display for UploadName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// Why a name or an `image` message's URL names no image of ours. The text is the `error` the
/// sender of such a message is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ImageNameError {
    #[error("{0:?} is not the name of an uploaded image")]
    NotAName(String),
    #[error("an image must be an {URL_PREFIX}<name> URL from POST /upload")]
    NotAnUploadUrl,
    /// Well formed, but no instance stored such a file.
    #[error("no uploaded image {0}: upload it with POST /upload first")]
    NotStored(String),
}

pub fn body_limit(max_upload_bytes: usize) -> usize {
    max_upload_bytes.saturating_add(MULTIPART_SLACK)
}

#[cfg(test)]
mod tests {
    use super::*;

    const PNG: &[u8] = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR";

    #[test]
    fn the_four_formats_are_recognised_by_their_first_bytes() {
        assert_eq!(ImageKind::sniff(PNG), Ok(ImageKind::Png));
        assert_eq!(
            ImageKind::sniff(b"\xFF\xD8\xFF\xE0\0\x10JFIF\0"),
            Ok(ImageKind::Jpeg)
        );
        assert_eq!(
            ImageKind::sniff(b"GIF89a\x01\0\x01\0\0\0"),
            Ok(ImageKind::Gif)
        );
        assert_eq!(
            ImageKind::sniff(b"GIF87a\x01\0\x01\0\0\0"),
            Ok(ImageKind::Gif)
        );
        assert_eq!(
            ImageKind::sniff(b"RIFF\x24\0\0\0WEBPVP8 "),
            Ok(ImageKind::Webp)
        );
    }

    #[test]
    fn svg_and_everything_else_are_refused() {
        for svg in [
            &b"<svg xmlns='http://www.w3.org/2000/svg'/>"[..],
            b"<?xml version='1.0'?><svg/>",
            b"\xEF\xBB\xBF  <SVG>",
        ] {
            assert_eq!(ImageKind::sniff(svg), Err(Refusal::Svg));
        }
        for other in [
            &b"hello, world"[..],
            b"RIFF\x24\0\0\0WAVEfmt ",
            b"%PDF-1.7\n",
            b"\x89PNG",
            b"",
        ] {
            assert_eq!(ImageKind::sniff(other), Err(Refusal::NotAnImage));
        }
    }

    #[test]
    fn names_are_the_content_hash_and_parse_back() {
        let name = UploadName::for_content(b"abc", ImageKind::Png);
        assert_eq!(
            name.as_str(),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad.png"
        );
        assert_eq!(UploadName::parse(name.as_str()), Ok(name.clone()));
        assert_eq!(UploadName::from_url(&name.url()), Ok(name));
    }

    #[test]
    fn anything_but_hex_and_a_known_extension_is_not_a_name() {
        let hex = "a".repeat(64);
        for bad in [
            "../secret.key".to_owned(),
            "..%2fsecret.key".to_owned(),
            format!("{hex}.svg"),
            format!("{hex}.PNG"),
            format!("{hex}.png/"),
            format!("{}.png", "A".repeat(64)),
            format!("{}.png", "a".repeat(63)),
            format!("{}.png", "a".repeat(65)),
            format!("{hex}.png.png"),
            format!("../{hex}.png"),
            hex.clone(),
            String::new(),
        ] {
            assert!(UploadName::parse(&bad).is_err(), "{bad:?}");
        }
        assert!(UploadName::from_url(&format!("https://x.example/uploads/{hex}.png")).is_err());
        assert!(UploadName::from_url(&format!("/uploads/{hex}.gif")).is_ok());
    }
}
