//! Page templates (askama), rendered into `Html` by the page routes.

use askama::Template;

use crate::{
    assets::Assets,
    i18n::{Lang, ModStrings, Strings},
};

/// The chat page, the seed's `ws.html`, in the visitor's language.
#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage<'a> {
    /// The static files, which the page links by their hashed URLs.
    pub assets: &'a Assets,
    pub lang: Lang,
    /// What the page says, in `lang`.
    pub t: &'static Strings,
    /// What it says about moderation, in `lang`.
    pub m: &'static ModStrings,
    /// The guest name offered to a visitor who signs in without typing one.
    pub guest_name: &'a str,
    /// The name of the signed-in visitor, who is connected at once.
    pub signed_in_as: Option<&'a str>,
    pub max_message_chars: usize,
    /// The room the page's socket joins.
    pub room: &'a str,
}

/// The page for a `?room=` that is not a room name: why, and the way to the lobby.
#[derive(Template)]
#[template(path = "room_error.html")]
pub struct RoomErrorPage<'a> {
    /// The static files, which the page links by their hashed URLs.
    pub assets: &'a Assets,
    pub lang: Lang,
    pub t: &'static Strings,
    pub reason: &'a str,
}

/// `/admin`, the moderators' page, in the visitor's language.
#[derive(Template)]
#[template(path = "admin.html")]
pub struct AdminPage<'a> {
    /// The static files, which the page links by their hashed URLs.
    pub assets: &'a Assets,
    pub lang: Lang,
    pub t: &'static Strings,
    pub m: &'static ModStrings,
    /// The moderator the visitor's cookie names, who sees the panels at once.
    pub moderator: Option<&'a str>,
}
