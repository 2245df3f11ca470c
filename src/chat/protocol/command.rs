//! What clients send: a text frame is chat, or a JSON command with a string `type`.

use serde::Deserialize;

use super::Cid;

/// What a client's text frame asks for.
#[derive(Debug, PartialEq, Eq)]
pub enum ClientCommand {
    /// `cid`: the client's own id for the message (see `Cid`); plain text has none.
    Chat { data: String, cid: Option<Cid> },
    /// A whisper to the user with this id.
    Private {
        to: u64,
        data: String,
        cid: Option<Cid>,
    },
    /// An uploaded image's URL, `/uploads/<name>`.
    Image { data: String, cid: Option<Cid> },
    /// A page of the events before this id (at least 1), newest first to fill it.
    History { before: u64 },
    /// A page of the room's users after this cursor (0: from the first).
    Users { after: u64 },
}

/// A command we cannot read: an unknown `type`, or fields missing or of the wrong kind. The
/// text is the `error` the client is told, with serde's account of what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("bad command: {0}")]
pub struct BadCommand(String);

/// A text frame is chat, unless it is a JSON object with a string `type`: then it is a command.
pub fn parse_client_text(text: &str) -> Result<ClientCommand, BadCommand> {
    let Some(command) = as_command(text) else {
        return Ok(ClientCommand::Chat {
            data: text.to_owned(),
            cid: None,
        });
    };
    #[derive(Deserialize)]
    #[serde(tag = "type", rename_all = "lowercase")]
    enum Wire {
        Chat {
            data: String,
            cid: Option<Cid>,
        },
        Private {
            to: u64,
            data: String,
            cid: Option<Cid>,
        },
        Image {
            data: String,
            cid: Option<Cid>,
        },
        History {
            before: u64,
        },
        Users {
            after: u64,
        },
    }
    match serde_json::from_value::<Wire>(command) {
        Ok(Wire::Chat { data, cid }) => Ok(ClientCommand::Chat { data, cid }),
        Ok(Wire::Private { to, data, cid }) => Ok(ClientCommand::Private { to, data, cid }),
        Ok(Wire::Image { data, cid }) => Ok(ClientCommand::Image { data, cid }),
        Ok(Wire::History { before: 0 }) => Err(BadCommand(
            "history needs `before`, an event id above 0".into(),
        )),
        Ok(Wire::History { before }) => Ok(ClientCommand::History { before }),
        Ok(Wire::Users { after }) => Ok(ClientCommand::Users { after }),
        Err(e) => Err(BadCommand(e.to_string())),
    }
}

fn as_command(text: &str) -> Option<serde_json::Value> {
    if !text.trim_start().starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(text).ok()?;
    value.get("type")?.is_string().then_some(value)
}
