//! RFC 6455's close codes (section 7.4): the ones this server sends, and which a client may send.
//!
//! The application's own codes (4000–4999) belong to the chat protocol, in
//! `chat::protocol::close`.

/// The server is shutting down, or the client went silent.
pub const GOING_AWAY: u16 = 1001;
/// A frame broke the framing rules.
pub const PROTOCOL: u16 = 1002;
/// A kind of data this endpoint does not take (binary frames here).
pub const UNSUPPORTED: u16 = 1003;
/// A text message that is not UTF-8.
pub const INVALID_PAYLOAD: u16 = 1007;
/// A rule of this server was broken (slow reader, too many refused messages).
pub const POLICY: u16 = 1008;
/// A message over the size limit.
pub const TOO_BIG: u16 = 1009;
/// Something went wrong on our side.
pub const INTERNAL: u16 = 1011;
/// Refused for now (the server is busy or cannot store); the client should retry later.
pub const TRY_AGAIN_LATER: u16 = 1013;

/// May a peer put this code in a close frame? 1004–1006 and 1015 are reserved for reports
/// outside the wire, 1016–2999 are unassigned, and below 1000 is not a code at all.
pub fn may_be_sent(code: u16) -> bool {
    matches!(code, 1000..=1003 | 1007..=1014 | 3000..=4999)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_codes_we_send_are_codes_a_peer_may_send() {
        for code in [
            GOING_AWAY,
            PROTOCOL,
            UNSUPPORTED,
            INVALID_PAYLOAD,
            POLICY,
            TOO_BIG,
            INTERNAL,
            TRY_AGAIN_LATER,
        ] {
            assert!(may_be_sent(code), "{code}");
        }
        for reserved in [999, 1004, 1005, 1006, 1015, 2999, 5000] {
            assert!(!may_be_sent(reserved), "{reserved}");
        }
    }
}
