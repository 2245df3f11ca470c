//! Uploaded images: which bytes count as an image (`ImageKind::sniff`), how a stored file is
//! named (`UploadName`), how an upload is read within its limit (`Intake`), and the folder that
//! keeps them (`Uploads`, `<data-dir>/uploads/`).
//!
//! A file is named by the SHA-256 of its content, so the same image uploaded twice is stored
//! once, and a name can be checked strictly: 64 lowercase hex digits, a dot, a known extension.
//! Nothing else ever reaches the file system, so no path can climb out of the folder.

use std::{
    fmt,
    io::{self, Write as _},
    path::{Path, PathBuf},
};

use sha2::{Digest, Sha256};

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
        let hash = Sha256::digest(bytes);
        UploadName {
            name: format!("{hash:x}.{}", kind.extension()),
            kind,
        }
    }

    /// Exactly 64 lowercase hex digits, a dot and a known extension; nothing else.
    pub fn parse(raw: &str) -> Result<Self, String> {
        let refuse = || format!("{raw:?} is not the name of an uploaded image");
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
    pub fn from_url(url: &str) -> Result<Self, String> {
        url.strip_prefix(URL_PREFIX)
            .ok_or_else(|| format!("an image must be an {URL_PREFIX}<name> URL from POST /upload"))
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

/// Why an upload was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IntakeError {
    #[error("the image is larger than {max} bytes")]
    TooLarge { max: usize },
    #[error(transparent)]
    Refused(#[from] Refusal),
    #[error("the file is empty")]
    Empty,
}

/// Takes an upload chunk by chunk: refuses it as soon as it is too large or its first bytes
/// are not an image, so a refused upload is never read to the end.
#[derive(Debug)]
pub struct Intake {
    max: usize,
    bytes: Vec<u8>,
    kind: Option<ImageKind>,
}

impl Intake {
    pub fn new(max: usize) -> Self {
        Intake {
            max,
            bytes: Vec::new(),
            kind: None,
        }
    }

    pub fn push(&mut self, chunk: &[u8]) -> Result<(), IntakeError> {
        if self.bytes.len() + chunk.len() > self.max {
            return Err(IntakeError::TooLarge { max: self.max });
        }
        self.bytes.extend_from_slice(chunk);
        if self.kind.is_none() && self.bytes.len() >= ImageKind::SNIFF_LEN {
            self.kind = Some(ImageKind::sniff(&self.bytes)?);
        }
        Ok(())
    }

    /// The whole file and what it is; a file shorter than `SNIFF_LEN` is judged here.
    pub fn finish(self) -> Result<(ImageKind, Vec<u8>), IntakeError> {
        if self.bytes.is_empty() {
            return Err(IntakeError::Empty);
        }
        let kind = match self.kind {
            Some(kind) => kind,
            None => ImageKind::sniff(&self.bytes)?,
        };
        Ok((kind, self.bytes))
    }
}

/// The folder of uploaded images, and the largest file it takes.
#[derive(Debug)]
pub struct Uploads {
    dir: PathBuf,
    max_bytes: usize,
}

impl Uploads {
    /// Creates `<data-dir>/uploads/` if missing and removes temp files a crash left behind.
    pub fn open(data_dir: &Path, max_bytes: usize) -> io::Result<Self> {
        let dir = data_dir.join("uploads");
        std::fs::create_dir_all(&dir)?;
        for entry in std::fs::read_dir(&dir)? {
            let entry = entry?;
            if entry.file_name().to_string_lossy().starts_with(TEMP_PREFIX) {
                let _ = std::fs::remove_file(entry.path());
            }
        }
        Ok(Uploads { dir, max_bytes })
    }

    pub fn max_bytes(&self) -> usize {
        self.max_bytes
    }

    /// The largest request body `POST /upload` reads: the file plus its multipart framing.
    pub fn body_limit(&self) -> usize {
        body_limit(self.max_bytes)
    }

    /// Where a stored file is. `UploadName` admits no separator and no dot-dot, so the join
    /// stays in the folder.
    pub fn path(&self, name: &UploadName) -> PathBuf {
        self.dir.join(name.as_str())
    }

    /// Whether this server stored the file: an `image` message may only name such a file.
    pub fn contains(&self, name: &UploadName) -> bool {
        self.path(name).is_file()
    }

    /// Writes the image under its content hash. It is written to a temp file and renamed, so
    /// a reader never sees half a file; blocking, so call it off the async threads.
    pub fn store(&self, kind: ImageKind, bytes: &[u8]) -> io::Result<UploadName> {
        let name = UploadName::for_content(bytes, kind);
        let target = self.path(&name);
        if target.is_file() {
            return Ok(name);
        }
        let mut temp = tempfile::Builder::new()
            .prefix(TEMP_PREFIX)
            .tempfile_in(&self.dir)?;
        temp.write_all(bytes)?;
        temp.as_file().sync_all()?;
        temp.persist(&target).map_err(|e| e.error)?;
        Ok(name)
    }
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

    #[test]
    fn intake_stops_at_the_limit_and_at_the_first_bytes() {
        let mut intake = Intake::new(16);
        intake.push(&PNG[..4]).unwrap();
        intake.push(&PNG[4..]).unwrap();
        assert_eq!(intake.push(&[0; 3]), Err(IntakeError::TooLarge { max: 16 }));

        let mut intake = Intake::new(1 << 20);
        assert_eq!(
            intake.push(b"<svg onload='alert(1)'>"),
            Err(IntakeError::Refused(Refusal::Svg))
        );
        assert_eq!(Intake::new(10).finish(), Err(IntakeError::Empty));
        assert_eq!(
            {
                let mut short = Intake::new(10);
                short.push(b"GIF89a").unwrap();
                short.finish().map(|(kind, _)| kind)
            },
            Ok(ImageKind::Gif)
        );
    }

    #[test]
    fn a_stored_file_is_found_under_its_hash_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let uploads = Uploads::open(dir.path(), 100).unwrap();
        let name = uploads.store(ImageKind::Png, PNG).unwrap();
        assert!(uploads.contains(&name));
        assert_eq!(std::fs::read(uploads.path(&name)).unwrap(), PNG);
        assert_eq!(
            uploads.store(ImageKind::Png, PNG).unwrap(),
            name,
            "same content, same file"
        );
        let files: Vec<_> = std::fs::read_dir(dir.path().join("uploads"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(files, [std::ffi::OsString::from(name.as_str())]);
        assert!(!uploads.contains(&UploadName::for_content(b"other", ImageKind::Png)));
    }

    #[test]
    fn a_crashs_temp_files_are_swept_at_start() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("uploads")).unwrap();
        std::fs::write(dir.path().join("uploads/.upload-abc"), b"half").unwrap();
        Uploads::open(dir.path(), 100).unwrap();
        assert!(!dir.path().join("uploads/.upload-abc").exists());
    }
}
