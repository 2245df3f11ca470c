//! The files under `--static-dir`, read, hashed and compressed once at start: pages link them
//! by a URL that names their content (`/static/js/chat.js?v=<hash>`), so a browser may keep
//! them for a year and still never runs an old script after an upgrade.

use std::{
    collections::HashMap,
    fmt::Write as _,
    io::Write as _,
    path::{Path, PathBuf},
    sync::{Mutex, OnceLock},
};

use anyhow::Context as _;
use bytes::Bytes;
use sha2::{Digest, Sha256};

/// Smaller files are sent as they are: compressing them saves less than a header costs.
pub const COMPRESS_FROM_BYTES: usize = 1024;

/// Brotli's best level takes about a second for all of jQuery; a debug build (the tests)
/// starts many servers, so it settles for a level that is fast and nearly as small.
const BROTLI_QUALITY: i32 = if cfg!(debug_assertions) { 5 } else { 11 };

/// Files the chat page loads in this order, also served joined into one (`bundle/<name>`),
/// so a first visit costs one request for each bundle instead of one per file; the files
/// stay apart in the tree, a concern each. jQuery is left out: it changes less often than
/// the rest, so it stays cached when they change.
pub const BUNDLES: &[(&str, &[&str])] = &[
    (
        "chat.css",
        &[
            "css/chat.css",
            "css/chat-log.css",
            "css/chat-phone.css",
            "css/chat-dark.css",
        ],
    ),
    (
        "chat.js",
        &[
            "js/page-state.js",
            "js/errors.js",
            "js/backoff.js",
            "js/chat-core.js",
            "js/chat-text.js",
            "js/chat-render.js",
            "js/chat-layout.js",
            "js/chat-people.js",
            "js/chat-socket.js",
            "js/chat-outbox.js",
            "js/chat-compose.js",
            "js/chat-notify.js",
            "js/chat-rooms.js",
            "js/chat-images.js",
            "js/chat.js",
            "js/moderate.js",
        ],
    ),
];

/// One file, in every encoding it is sent in.
#[derive(Debug)]
pub struct Asset {
    /// The first 16 hex digits of the SHA-256 of its bytes: its `?v=` and its `ETag`.
    pub hash: String,
    pub content_type: &'static str,
    pub identity: Bytes,
    /// Only when smaller than `identity`.
    pub gzip: Option<Bytes>,
    pub brotli: Option<Bytes>,
}

/// Every file under the static directory, by its path there (`js/chat.js`).
#[derive(Debug, Default)]
pub struct Assets {
    files: HashMap<String, Asset>,
}

impl Assets {
    /// Reads every file under `dir`. A missing directory serves nothing, as it did before.
    pub fn load(dir: &Path) -> anyhow::Result<Assets> {
        let mut assets = Assets::default();
        if dir.is_dir() {
            assets.read_dir(dir, PathBuf::new())?;
        } else {
            tracing::warn!(dir = %dir.display(), "no static directory: /static/ serves nothing");
        }
        for (name, parts) in BUNDLES {
            assets.bundle(name, parts)?;
        }
        Ok(assets)
    }

    /// `bundle/<name>`, the `parts` one after the other, if every one of them is here (a
    /// static dir of one's own may lack some: its pages then link the files one by one).
    fn bundle(&mut self, name: &str, parts: &[&str]) -> anyhow::Result<()> {
        let mut joined = Vec::new();
        for part in parts {
            let Some(asset) = self.files.get(*part) else {
                return Ok(());
            };
            joined.extend_from_slice(&asset.identity);
            // A script without its last semicolon or newline must not run into the next.
            joined.extend_from_slice(if name.ends_with(".js") {
                b"\n;\n"
            } else {
                b"\n"
            });
        }
        let key = format!("bundle/{name}");
        self.files.insert(key.clone(), Asset::new(&key, joined)?);
        Ok(())
    }

    /// The URLs a page links bundle `name` by: the bundle's, or its files' one by one when
    /// it could not be made.
    pub fn bundle_urls(&self, name: &str) -> Vec<String> {
        let key = format!("bundle/{name}");
        if self.files.contains_key(&key) {
            return vec![self.url(&key)];
        }
        BUNDLES
            .iter()
            .filter(|(bundle, _)| *bundle == name)
            .flat_map(|(_, parts)| parts.iter().map(|part| self.url(part)))
            .collect()
    }

    fn read_dir(&mut self, root: &Path, under: PathBuf) -> anyhow::Result<()> {
        let dir = root.join(&under);
        let entries =
            std::fs::read_dir(&dir).with_context(|| format!("reading {}", dir.display()))?;
        for entry in entries {
            let entry = entry?;
            let relative = under.join(entry.file_name());
            let path = entry.path();
            let meta = std::fs::metadata(&path).with_context(|| format!("{}", path.display()))?;
            if meta.is_dir() {
                self.read_dir(root, relative)?;
            } else if meta.is_file() {
                let Some(key) = url_path(&relative) else {
                    continue;
                };
                let bytes = std::fs::read(&path).with_context(|| format!("{}", path.display()))?;
                self.files.insert(key.clone(), Asset::new(&key, bytes)?);
            }
        }
        Ok(())
    }

    pub fn get(&self, path: &str) -> Option<&Asset> {
        self.files.get(path)
    }

    /// The URL a page links `path` by: with its hash when the file is here, so the browser
    /// may keep it for good; without, for a file added after start.
    pub fn url(&self, path: &str) -> String {
        match self.files.get(path) {
            Some(asset) => format!("/static/{path}?v={}", asset.hash),
            None => format!("/static/{path}"),
        }
    }

    pub fn len(&self) -> usize {
        self.files.len()
    }

    pub fn is_empty(&self) -> bool {
        self.files.is_empty()
    }
}

/// `js/chat.js` for `js/chat.js` on any platform; `None` for a name that is not UTF-8.
fn url_path(relative: &Path) -> Option<String> {
    let parts: Option<Vec<&str>> = relative
        .components()
        .map(|c| c.as_os_str().to_str())
        .collect();
    Some(parts?.join("/"))
}

impl Asset {
    fn new(path: &str, bytes: Vec<u8>) -> anyhow::Result<Asset> {
        let digest = Sha256::digest(&bytes);
        let mut hash = String::with_capacity(16);
        for byte in &digest[..8] {
            let _ = write!(hash, "{byte:02x}");
        }
        let content_type = content_type(path);
        let (gzip, brotli) = if compressible(content_type) && bytes.len() >= COMPRESS_FROM_BYTES {
            compressed(digest.into(), &bytes).with_context(|| format!("compressing {path}"))?
        } else {
            (None, None)
        };
        Ok(Asset {
            hash,
            content_type,
            identity: Bytes::from(bytes),
            gzip,
            brotli,
        })
    }

    /// Whether the file is sent in more than one encoding (then caches must keep each apart).
    pub fn has_encodings(&self) -> bool {
        self.gzip.is_some() || self.brotli.is_some()
    }
}

type Encoded = (Option<Bytes>, Option<Bytes>);

/// The gzip and brotli forms of `bytes`, each only if smaller. Kept by content for the life of
/// the process, so servers that share one (the tests start hundreds) compress each file once.
fn compressed(digest: [u8; 32], bytes: &[u8]) -> std::io::Result<Encoded> {
    static DONE: OnceLock<Mutex<HashMap<[u8; 32], Encoded>>> = OnceLock::new();
    let done = DONE.get_or_init(Mutex::default);
    if let Some(known) = done.lock().unwrap_or_else(|e| e.into_inner()).get(&digest) {
        return Ok(known.clone());
    }
    let smaller = |c: Vec<u8>| (c.len() < bytes.len()).then(|| Bytes::from(c));
    let encoded = (smaller(gzip(bytes)?), smaller(brotli(bytes)?));
    done.lock()
        .unwrap_or_else(|e| e.into_inner())
        .insert(digest, encoded.clone());
    Ok(encoded)
}

fn gzip(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    encoder.write_all(bytes)?;
    encoder.finish()
}

fn brotli(bytes: &[u8]) -> std::io::Result<Vec<u8>> {
    let params = brotli::enc::BrotliEncoderParams {
        quality: BROTLI_QUALITY,
        ..Default::default()
    };
    let mut out = Vec::new();
    brotli::BrotliCompress(&mut &bytes[..], &mut out, &params)?;
    Ok(out)
}

fn content_type(path: &str) -> &'static str {
    let ext = path.rsplit_once('.').map_or("", |(_, ext)| ext);
    match ext.to_ascii_lowercase().as_str() {
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "html" => "text/html; charset=utf-8",
        "json" => "application/json",
        "txt" | "md" => "text/plain; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/x-icon",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

/// Text compresses; images other than SVG and fonts already are.
fn compressible(content_type: &str) -> bool {
    content_type.starts_with("text/")
        || content_type == "application/json"
        || content_type == "image/svg+xml"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_found_by_its_path_and_linked_by_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("js")).unwrap();
        std::fs::write(dir.path().join("js/a.js"), "x".repeat(4000)).unwrap();
        std::fs::write(dir.path().join("small.css"), "p{}").unwrap();
        let assets = Assets::load(dir.path()).unwrap();
        let a = assets.get("js/a.js").unwrap();
        assert_eq!(
            assets.url("js/a.js"),
            format!("/static/js/a.js?v={}", a.hash)
        );
        assert_eq!(a.hash.len(), 16);
        assert!(a.gzip.as_ref().unwrap().len() < 100);
        assert!(a.brotli.as_ref().unwrap().len() < 100);
        assert!(!assets.get("small.css").unwrap().has_encodings());
        assert_eq!(assets.url("missing.js"), "/static/missing.js");
    }

    #[test]
    fn a_bundle_joins_its_files_in_order_and_without_one_of_them_pages_link_each() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("css")).unwrap();
        let (_, parts) = BUNDLES[0];
        for (n, part) in parts.iter().enumerate() {
            std::fs::write(dir.path().join(part), format!("p{n}{{}}")).unwrap();
        }
        let assets = Assets::load(dir.path()).unwrap();
        let bundle = assets.get("bundle/chat.css").unwrap();
        assert_eq!(&bundle.identity[..], b"p0{}\np1{}\np2{}\np3{}\n");
        assert_eq!(
            assets.bundle_urls("chat.css"),
            [format!("/static/bundle/chat.css?v={}", bundle.hash)]
        );

        std::fs::remove_file(dir.path().join(parts[1])).unwrap();
        let assets = Assets::load(dir.path()).unwrap();
        assert!(assets.get("bundle/chat.css").is_none());
        let urls = assets.bundle_urls("chat.css");
        assert_eq!(urls.len(), 4);
        assert!(urls[0].starts_with("/static/css/chat.css?v="));
        assert_eq!(urls[1], "/static/css/chat-log.css");
    }
}
