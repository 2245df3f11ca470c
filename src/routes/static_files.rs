//! `GET /static/{path}`: the files `assets` read at start, in the encoding the browser takes,
//! kept for a year when asked for by their hashed URL, revalidated by `ETag` otherwise.

use axum::{
    extract::{Path, Query, State},
    http::{HeaderMap, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde::Deserialize;

use crate::{assets::Asset, state::AppState};

/// A year: the longest a cache is asked to keep anything.
const IMMUTABLE: &str = "public, max-age=31536000, immutable";
/// Kept, but asked about each time: one `ETag` round trip, answered 304 while unchanged.
const REVALIDATE: &str = "no-cache";

#[derive(Debug, Deserialize)]
pub struct Version {
    v: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Encoding {
    Brotli,
    Gzip,
    Identity,
}

impl Encoding {
    fn suffix(self) -> &'static str {
        match self {
            Encoding::Brotli => "-br",
            Encoding::Gzip => "-gz",
            Encoding::Identity => "",
        }
    }
}

pub async fn get(
    State(state): State<AppState>,
    Path(path): Path<String>,
    Query(version): Query<Version>,
    headers: HeaderMap,
) -> Response {
    let Some(asset) = state.assets.get(&path) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let encoding = choose(asset, &headers);
    // Each encoding is its own representation, with its own tag; a 304 may answer any of
    // them, since all carry the same file.
    let etag = format!("\"{}{}\"", asset.hash, encoding.suffix());
    let cache = if version.v.as_deref() == Some(asset.hash.as_str()) {
        IMMUTABLE
    } else {
        REVALIDATE
    };
    let mut response = if not_modified(asset, &headers) {
        StatusCode::NOT_MODIFIED.into_response()
    } else {
        let body = match encoding {
            Encoding::Brotli => asset.brotli.clone(),
            Encoding::Gzip => asset.gzip.clone(),
            Encoding::Identity => None,
        };
        let mut response = body
            .unwrap_or_else(|| asset.identity.clone())
            .into_response();
        let h = response.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(asset.content_type),
        );
        match encoding {
            Encoding::Brotli => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("br")),
            Encoding::Gzip => h.insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip")),
            Encoding::Identity => None,
        };
        response
    };
    let h = response.headers_mut();
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    if let Ok(etag) = HeaderValue::from_str(&etag) {
        h.insert(header::ETAG, etag);
    }
    if asset.has_encodings() {
        h.insert(header::VARY, HeaderValue::from_static("accept-encoding"));
    }
    response
}

/// Brotli if the browser takes it, else gzip, else the file as it is; `q=0` refuses one.
fn choose(asset: &Asset, headers: &HeaderMap) -> Encoding {
    if !asset.has_encodings() {
        return Encoding::Identity;
    }
    let accepted = |name: &str| {
        headers
            .get_all(header::ACCEPT_ENCODING)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|item| {
                let mut parts = item.split(';');
                let coding = parts.next().unwrap_or("").trim();
                let refused = parts.any(|p| {
                    p.trim()
                        .strip_prefix("q=")
                        .and_then(|q| q.trim().parse::<f32>().ok())
                        .is_some_and(|q| q <= 0.0)
                });
                (coding.eq_ignore_ascii_case(name) || coding == "*") && !refused
            })
    };
    if asset.brotli.is_some() && accepted("br") {
        Encoding::Brotli
    } else if asset.gzip.is_some() && accepted("gzip") {
        Encoding::Gzip
    } else {
        Encoding::Identity
    }
}

fn not_modified(asset: &Asset, headers: &HeaderMap) -> bool {
    headers
        .get_all(header::IF_NONE_MATCH)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|tag| {
            let tag = tag.trim();
            let tag = tag.strip_prefix("W/").unwrap_or(tag);
            tag == "*"
                || tag
                    .strip_prefix('"')
                    .and_then(|t| t.strip_suffix('"'))
                    .and_then(|t| t.strip_prefix(asset.hash.as_str()))
                    .is_some_and(|rest| ["", "-br", "-gz"].contains(&rest))
        })
}
