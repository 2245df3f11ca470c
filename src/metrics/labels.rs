//! The labels of the refusal counters: why a message, an upload or a connection was refused,
//! each with the label it is counted under.

/// Why a message from a client was refused. A label of `passerby_messages_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Longer than `--max-message-chars`.
    TooLong,
    /// Over the user's rate limit, and dropped.
    RateLimited,
    /// JSON with a `type` we do not know, or the wrong fields.
    BadCommand,
    /// A binary frame; the socket is closed with 1003.
    Binary,
    /// A frame or message over the size limit; closed with 1009.
    TooBig,
    /// A text frame that is not UTF-8; closed with 1007.
    InvalidUtf8,
    /// A WebSocket protocol violation; closed with 1002.
    Protocol,
    /// A private message to oneself or to nobody online.
    BadRecipient,
    /// An `image` naming no file this server stored.
    BadImage,
    /// A message with a word the moderators filter out, while the filter rejects.
    Filtered,
    /// A socket past `--max-refused` refused messages a minute, closed with 1008. Counted once,
    /// beside the refused messages themselves.
    TooManyRefused,
}

impl Reject {
    pub const ALL: [Reject; 11] = [
        Reject::TooLong,
        Reject::RateLimited,
        Reject::BadCommand,
        Reject::Binary,
        Reject::TooBig,
        Reject::InvalidUtf8,
        Reject::Protocol,
        Reject::BadRecipient,
        Reject::BadImage,
        Reject::Filtered,
        Reject::TooManyRefused,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Reject::TooLong => "too_long",
            Reject::RateLimited => "rate_limited",
            Reject::BadCommand => "bad_command",
            Reject::Binary => "binary",
            Reject::TooBig => "too_big",
            Reject::InvalidUtf8 => "invalid_utf8",
            Reject::Protocol => "protocol",
            Reject::BadRecipient => "bad_recipient",
            Reject::BadImage => "bad_image",
            Reject::Filtered => "filtered",
            Reject::TooManyRefused => "too_many_refused",
        }
    }

    /// The rejection behind a close code the server sends, if that code means one.
    pub fn for_close_code(code: u16) -> Option<Reject> {
        use crate::ws::close;
        match code {
            close::UNSUPPORTED => Some(Reject::Binary),
            close::TOO_BIG => Some(Reject::TooBig),
            close::INVALID_PAYLOAD => Some(Reject::InvalidUtf8),
            close::PROTOCOL => Some(Reject::Protocol),
            _ => None,
        }
    }
}

/// Why an upload was refused. A label of `passerby_uploads_rejected_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UploadReject {
    /// No valid sign-in cookie (401), or another site's page (403).
    NotSignedIn,
    /// Over `--max-upload-bytes` (413).
    TooLarge,
    /// Not PNG, JPEG, GIF or WebP by its content, SVG included (415).
    UnsupportedType,
    /// Not multipart, no `file` field, an empty file (400).
    Malformed,
    /// The user already has `--max-uploads-per-user` uploads in progress (429).
    Busy,
    /// `--max-uploads` uploads in progress from everyone (503).
    ServerBusy,
    /// Over `--upload-rate` (429).
    RateLimited,
    /// Over `--upload-quota-bytes` for the hour, up front or while streaming (429).
    Quota,
    /// The body sent nothing for `--body-timeout` (408).
    Timeout,
    /// The object store failed or did not answer within `--upload-store-timeout` (503).
    StoreUnavailable,
}

impl UploadReject {
    pub const ALL: [UploadReject; 10] = [
        UploadReject::NotSignedIn,
        UploadReject::TooLarge,
        UploadReject::UnsupportedType,
        UploadReject::Malformed,
        UploadReject::Busy,
        UploadReject::ServerBusy,
        UploadReject::RateLimited,
        UploadReject::Quota,
        UploadReject::Timeout,
        UploadReject::StoreUnavailable,
    ];

    pub fn label(self) -> &'static str {
        match self {
            UploadReject::NotSignedIn => "not_signed_in",
            UploadReject::TooLarge => "too_large",
            UploadReject::UnsupportedType => "unsupported_type",
            UploadReject::Malformed => "malformed",
            UploadReject::Busy => "busy",
            UploadReject::ServerBusy => "server_busy",
            UploadReject::RateLimited => "rate_limited",
            UploadReject::StoreUnavailable => "store_unavailable",
            UploadReject::Quota => "quota",
            UploadReject::Timeout => "timeout",
        }
    }
}

/// Why a connection or socket was refused at the edge. A label of
/// `passerby_connections_refused_total`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Over `--max-connections-per-address` (429).
    PerAddress,
    /// Over `--max-connections` (503).
    Total,
    /// A WebSocket over `--max-sockets-per-user` (closed with 4004).
    PerUser,
}

impl Refused {
    pub const ALL: [Refused; 3] = [Refused::PerAddress, Refused::Total, Refused::PerUser];

    pub fn label(self) -> &'static str {
        match self {
            Refused::PerAddress => "per_address",
            Refused::Total => "total",
            Refused::PerUser => "per_user",
        }
    }
}
