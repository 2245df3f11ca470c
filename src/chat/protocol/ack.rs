//! A client's own id for a message it sends (`cid`), and the `ack` that tells it the id the
//! message got: a retry with the same `cid` is stored once and answered with the same `ack`.

use serde::{Deserialize, Serialize};

use super::EventKind;

/// A client's id for one of its messages: 1 to `Cid::MAX` characters of `A-Z a-z 0-9 - _ . :`.
/// Bounded and plain, so it can sit in a Redis key and in every `ack` as it came.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
#[serde(transparent)]
pub struct Cid(String);

impl Cid {
    pub const MAX: usize = 64;

    pub fn parse(raw: &str) -> Result<Cid, String> {
        if raw.is_empty() || raw.len() > Cid::MAX {
            return Err(format!("cid must be 1 to {} characters", Cid::MAX));
        }
        if !raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            return Err("cid may hold only letters, digits and - _ . :".into());
        }
        Ok(Cid(raw.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl<'de> Deserialize<'de> for Cid {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let raw = String::deserialize(d)?;
        Cid::parse(&raw).map_err(serde::de::Error::custom)
    }
}

/// `ack`: to the sender only, the id its message `cid` was stored under. Like an `error` it
/// is no event of the room: `id` is the last id the socket had (stamped by the hub), so it
/// takes none of the room's ids.
/// `{"id":<last>,"type":"ack","data":{"cid":"…","id":N},"time":…}`
#[derive(Debug, Serialize)]
pub struct AckEvent<'a> {
    pub id: u64,
    #[serde(rename = "type")]
    pub kind: EventKind,
    pub data: AckData<'a>,
    pub time: u64,
}

#[derive(Debug, Serialize)]
pub struct AckData<'a> {
    pub cid: &'a Cid,
    pub id: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cid_is_short_and_plain() {
        for good in ["a", "m-1", "0f3a.b_c:9", &"x".repeat(Cid::MAX)] {
            assert_eq!(Cid::parse(good).unwrap().as_str(), good);
        }
        for bad in [
            "",
            " a",
            "a b",
            "é",
            "a/b",
            "{x}",
            &"x".repeat(Cid::MAX + 1),
        ] {
            assert!(Cid::parse(bad).is_err(), "{bad:?}");
        }
    }
}
