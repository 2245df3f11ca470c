//! Who is who: the guest `User`, its signed `name` cookie, and the validated `UserName`.
//!
//! The cookie's value is the seed's base64 JSON, `{"type":"游客","id":…,"name":…,"image":…}`,
//! followed by the session's `sid` and `iat` (see `session`), behind an HMAC-SHA256 tag made
//! with the server's key (axum-extra's `SignedCookieJar`), so a forged, edited or unsigned
//! cookie is refused. Whether a well-signed session is still good (not signed out, not too
//! old) is `crate::sessions`' call.

mod key;
mod name;
mod session;

use axum_extra::extract::{
    SignedCookieJar,
    cookie::{Cookie, SameSite},
};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use serde::{Deserialize, Serialize};

pub use key::load_or_create_key;
pub use name::{UserName, guest_name};
pub use session::{Session, SessionId, unix_now};

/// The cookie's name, as in the seed.
pub const COOKIE_NAME: &str = "name";

/// What a guest is, as the seed spells it.
pub const GUEST_KIND: &str = "游客";

/// A signed-in guest. Field order is the seed's, so the JSON matches it byte for byte.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    #[serde(rename = "type")]
    pub kind: String,
    pub id: u64,
    pub name: String,
    pub image: u8,
}

impl User {
    pub fn guest(id: u64, name: UserName) -> Self {
        User {
            kind: GUEST_KIND.to_owned(),
            id,
            name: name.into_inner(),
            image: (id % 10) as u8,
        }
    }

    /// The seed's cookie payload: base64 of the JSON, with no session. No longer accepted
    /// (`Session::decode` wants `sid` and `iat` too); kept to show what the seed wrote.
    pub fn encode(&self) -> String {
        let json = serde_json::to_vec(self).expect("a User always serializes");
        STANDARD.encode(json)
    }
}

/// How the `name` cookie is written.
#[derive(Debug, Clone, Copy)]
pub struct CookiePolicy {
    pub secure: bool,
    pub max_age_days: u32,
}

impl CookiePolicy {
    pub fn sign_in(&self, jar: SignedCookieJar, session: &Session) -> SignedCookieJar {
        let cookie = Cookie::build((COOKIE_NAME, session.encode()))
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .max_age(cookie::time::Duration::days(i64::from(self.max_age_days)));
        jar.add(cookie)
    }

    /// Always sends an expired cookie, whether or not the request carried a valid one.
    pub fn sign_out(&self, jar: SignedCookieJar) -> SignedCookieJar {
        let mut cookie = Cookie::build(COOKIE_NAME)
            .http_only(true)
            .same_site(SameSite::Lax)
            .path("/")
            .secure(self.secure)
            .build();
        cookie.make_removal();
        jar.add(cookie)
    }
}

/// The session named by a request's cookie, if it is present, signed by us and well formed;
/// whether it is still good is `crate::sessions::Sessions::check`'s call.
pub fn signed_session(jar: &SignedCookieJar) -> Option<Session> {
    jar.get(COOKIE_NAME)
        .and_then(|c| Session::decode(c.value()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderMap, header};
    use axum_extra::extract::cookie::Key;

    fn user() -> User {
        User::guest(7, UserName::parse("路人甲").unwrap())
    }

    fn session() -> Session {
        Session::start(user()).unwrap()
    }

    fn jar_from_header(key: &Key, cookie_header: &str) -> SignedCookieJar {
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, cookie_header.parse().unwrap());
        SignedCookieJar::from_headers(&headers, key.clone())
    }

    fn set_cookie_value(jar: SignedCookieJar) -> String {
        use axum::response::IntoResponse;
        let response = jar.into_response();
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        set.split(';').next().unwrap().to_owned()
    }

    #[test]
    fn payload_is_the_seeds_base64_json() {
        let encoded = user().encode();
        let json = String::from_utf8(STANDARD.decode(&encoded).unwrap()).unwrap();
        assert_eq!(json, r#"{"type":"游客","id":7,"name":"路人甲","image":7}"#);
    }

    #[test]
    fn image_is_id_mod_ten() {
        assert_eq!(User::guest(123, UserName::parse("x").unwrap()).image, 3);
    }

    #[test]
    fn signed_cookie_round_trips() {
        let key = Key::generate();
        let policy = CookiePolicy {
            secure: false,
            max_age_days: 30,
        };
        let session = session();
        let pair = set_cookie_value(policy.sign_in(SignedCookieJar::new(key.clone()), &session));
        let jar = jar_from_header(&key, &pair);
        assert_eq!(signed_session(&jar), Some(session));
    }

    #[test]
    fn unsigned_seed_cookie_is_refused() {
        let key = Key::generate();
        let jar = jar_from_header(&key, &format!("name={}", session().encode()));
        assert_eq!(signed_session(&jar), None);
    }

    #[test]
    fn edited_payload_is_refused() {
        let key = Key::generate();
        let policy = CookiePolicy {
            secure: false,
            max_age_days: 30,
        };
        let mine = session();
        let pair = set_cookie_value(policy.sign_in(SignedCookieJar::new(key.clone()), &mine));
        let (tag, _) = pair.split_at("name=".len() + 44);
        let mut other = user();
        other.id = 1;
        let other = Session {
            user: std::sync::Arc::new(other),
            ..mine
        };
        let forged = format!("{tag}{}", other.encode());
        assert_eq!(signed_session(&jar_from_header(&key, &forged)), None);
    }

    #[test]
    fn cookie_signed_with_another_key_is_refused() {
        let policy = CookiePolicy {
            secure: false,
            max_age_days: 30,
        };
        let pair =
            set_cookie_value(policy.sign_in(SignedCookieJar::new(Key::generate()), &session()));
        assert_eq!(
            signed_session(&jar_from_header(&Key::generate(), &pair)),
            None
        );
    }

    #[test]
    fn signed_but_malformed_payloads_are_refused() {
        for bad in [
            "not base64!",
            &STANDARD.encode("not json"),
            &STANDARD.encode(r#"{"type":"admin","id":1,"name":"x","image":1}"#),
            &STANDARD.encode(r#"{"type":"游客","id":1,"name":"","image":1}"#),
        ] {
            assert_eq!(Session::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn cookie_attributes_are_locked_down() {
        use axum::response::IntoResponse;
        let policy = CookiePolicy {
            secure: true,
            max_age_days: 30,
        };
        let response = policy
            .sign_in(SignedCookieJar::new(Key::generate()), &session())
            .into_response();
        let set = response.headers()[header::SET_COOKIE].to_str().unwrap();
        for attr in [
            "HttpOnly",
            "SameSite=Lax",
            "Path=/",
            "Secure",
            "Max-Age=2592000",
        ] {
            assert!(set.contains(attr), "{attr} missing from {set}");
        }
    }
}
