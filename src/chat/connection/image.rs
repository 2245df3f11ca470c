//! An `image` message: it may only name a stored upload. The folder answers at once; an object
//! store is asked, and while it is, this socket reads nothing more, so what it sends after the
//! image still comes after it. The store's deadline bounds the pause.

use std::task::{Context, Poll};

use serde_json::json;

use super::Connection;
use crate::{
    chat::protocol::{Cid, Reply, code},
    metrics::Reject,
    upload::{Found, Lookup, LookupError, UploadName},
};

/// An `image` message waiting for the store to say whether its image exists.
pub(super) struct PendingImage {
    url: String,
    cid: Option<Cid>,
    lookup: Lookup,
}

impl<T> Connection<T> {
    pub(super) fn on_image(&mut self, url: String, cid: Option<Cid>) {
        match self.state.uploads.find(&url) {
            Ok(Found::Now(image)) => self.send_image(&image, cid.as_ref()),
            Ok(Found::Later(lookup)) => {
                self.image = Some(Box::new(PendingImage { url, cid, lookup }))
            }
            Err(e) => self.refuse(Reject::BadImage, &e.to_string(), json!({}), &url),
        }
    }

    /// Ready once no image waits on the store: until then, the socket reads nothing more.
    pub(super) fn poll_image(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        let Some(pending) = &mut self.image else {
            return Poll::Ready(());
        };
        let Poll::Ready(found) = pending.lookup.as_mut().poll(cx) else {
            return Poll::Pending;
        };
        let url = std::mem::take(&mut pending.url);
        let cid = pending.cid.take();
        self.image = None;
        match found {
            Ok(image) => self.send_image(&image, cid.as_ref()),
            Err(LookupError::Name(e)) => {
                self.refuse(Reject::BadImage, &e.to_string(), json!({}), &url)
            }
            // The store's failure, not the client's: no refusal is counted.
            Err(LookupError::Store(e)) => {
                self.send_chats();
                let reply = Reply::coded(code::NOT_SENT, format!("not sent: {e}"), cid.as_ref());
                self.state.engine.reply(&self.member, reply);
            }
        }
        Poll::Ready(())
    }

    fn send_image(&mut self, image: &UploadName, cid: Option<&Cid>) {
        if !self.within_rate_limit() || self.muted() || self.room_refused() {
            return;
        }
        self.send_chats();
        if let Err(e) = self.state.engine.image(&self.member, image, cid) {
            self.not_sent(&e, [cid]);
        }
    }
}
