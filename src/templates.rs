//! Page templates (askama), rendered into `Html` by the page routes.

use askama::Template;

/// The chat page, the seed's `ws.html`.
#[derive(Template)]
#[template(path = "chat.html")]
pub struct ChatPage<'a> {
    /// The guest name offered to a visitor who signs in without typing one.
    pub guest_name: &'a str,
    /// The name of the signed-in visitor, who is connected at once.
    pub signed_in_as: Option<&'a str>,
    pub max_message_chars: usize,
}
