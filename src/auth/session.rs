//! One sign-in: the `Session` a cookie names, with its random id and issue time.
//!
//! The cookie's JSON is the seed's user (`type`, `id`, `name`, `image`, in that order and
//! unchanged) followed by `sid` and `iat`. Decoding is strict: a payload with a field
//! missing or one too many is refused, so a cookie signed before sessions existed (no `sid`,
//! no `iat`) opens nothing and its page signs in again.

use std::{
    fmt,
    sync::Arc,
    time::{SystemTime, UNIX_EPOCH},
};

use base64::{
    Engine as _,
    engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD},
};
use serde::{Deserialize, Serialize};

use super::{GUEST_KIND, User, UserName};

/// 128 random bits naming one sign-in; revoking it signs out that browser only.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId([u8; 16]);

impl SessionId {
    /// A new id from the operating system's generator.
    pub fn generate() -> anyhow::Result<SessionId> {
        let mut bytes = [0u8; 16];
        getrandom::fill(&mut bytes)
            .map_err(|e| anyhow::anyhow!("no randomness for a session id: {e}"))?;
        Ok(SessionId(bytes))
    }

    pub fn from_bytes(bytes: [u8; 16]) -> SessionId {
        SessionId(bytes)
    }

    pub fn as_bytes(&self) -> &[u8; 16] {
        &self.0
    }

    /// The 22-character base64url form the cookie carries.
    pub fn parse(text: &str) -> Option<SessionId> {
        let bytes = URL_SAFE_NO_PAD.decode(text).ok()?;
        Some(SessionId(bytes.try_into().ok()?))
    }
}

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&URL_SAFE_NO_PAD.encode(self.0))
    }
}

/// Never the id itself in logs: it is as good as the cookie until it expires.
impl fmt::Debug for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SessionId({:02x}{:02x}…)", self.0[0], self.0[1])
    }
}

/// A signed-in browser: who, which sign-in, and when it was issued (unix seconds).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    pub user: Arc<User>,
    pub id: SessionId,
    pub issued: u64,
}

/// The cookie's JSON, field for field; `deny_unknown_fields` keeps decoding strict.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    id: u64,
    name: String,
    image: u8,
    sid: String,
    iat: u64,
}

impl Session {
    /// A new session for a user who just signed in.
    pub fn start(user: User) -> anyhow::Result<Session> {
        Ok(Session {
            user: Arc::new(user),
            id: SessionId::generate()?,
            issued: unix_now(),
        })
    }

    /// The cookie payload: base64 of the JSON.
    pub fn encode(&self) -> String {
        let payload = Payload {
            kind: self.user.kind.clone(),
            id: self.user.id,
            name: self.user.name.clone(),
            image: self.user.image,
            sid: self.id.to_string(),
            iat: self.issued,
        };
        let json = serde_json::to_vec(&payload).expect("a payload always serializes");
        STANDARD.encode(json)
    }

    /// Reads a payload. Only called on values whose signature checked out, but still strict.
    pub fn decode(value: &str) -> Option<Session> {
        let json = STANDARD.decode(value).ok()?;
        let p: Payload = serde_json::from_slice(&json).ok()?;
        let name_ok = UserName::parse(&p.name).is_ok_and(|n| n.as_str() == p.name);
        if p.kind != GUEST_KIND || !name_ok {
            return None;
        }
        Some(Session {
            user: Arc::new(User {
                kind: p.kind,
                id: p.id,
                name: p.name,
                image: p.image,
            }),
            id: SessionId::parse(&p.sid)?,
            issued: p.iat,
        })
    }

    /// Seconds since it was issued; a clock that went back counts as none.
    pub fn age(&self, now: u64) -> u64 {
        now.saturating_sub(self.issued)
    }
}

/// Seconds since the epoch by the wall clock: the cookie's `iat` outlives the process.
pub fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session() -> Session {
        Session {
            user: Arc::new(User::guest(7, UserName::parse("路人甲").unwrap())),
            id: SessionId::from_bytes([0xab; 16]),
            issued: 1_790_000_000,
        }
    }

    #[test]
    fn payload_keeps_the_seeds_fields_first_then_the_session() {
        let json = String::from_utf8(STANDARD.decode(session().encode()).unwrap()).unwrap();
        assert_eq!(
            json,
            r#"{"type":"游客","id":7,"name":"路人甲","image":7,"sid":"q6urq6urq6urq6urq6urqw","iat":1790000000}"#
        );
        assert_eq!(Session::decode(&session().encode()), Some(session()));
    }

    #[test]
    fn a_cookie_from_before_sessions_or_with_extra_fields_is_refused() {
        let seed = User::guest(7, UserName::parse("x").unwrap()).encode();
        assert_eq!(Session::decode(&seed), None);
        for bad in [
            r#"{"type":"游客","id":7,"name":"x","image":7,"sid":"q6urq6urq6urq6urq6urqw"}"#,
            r#"{"type":"游客","id":7,"name":"x","image":7,"iat":1}"#,
            r#"{"type":"游客","id":7,"name":"x","image":7,"sid":"q6urq6urq6urq6urq6urqw","iat":1,"admin":true}"#,
            r#"{"type":"游客","id":7,"name":"x","image":7,"sid":"short","iat":1}"#,
            r#"{"type":"游客","id":7,"name":"x","image":7,"sid":"q6urq6urq6urq6urq6urqw","iat":-1}"#,
        ] {
            assert_eq!(Session::decode(&STANDARD.encode(bad)), None, "{bad}");
        }
    }

    #[test]
    fn ids_are_random_and_round_trip_as_text() {
        let a = SessionId::generate().unwrap();
        let b = SessionId::generate().unwrap();
        assert_ne!(a, b);
        assert_eq!(SessionId::parse(&a.to_string()), Some(a));
        assert_eq!(a.to_string().len(), 22);
        assert!(!format!("{a:?}").contains(&a.to_string()));
    }

    #[test]
    fn age_never_goes_negative() {
        assert_eq!(session().age(1_790_000_100), 100);
        assert_eq!(session().age(1), 0);
    }
}
