//! `ConnService`: what hyper calls for each request of one connection. It gives handlers the
//! peer address (`ConnectInfo`), tells the connection's clock a request is in flight until its
//! response is sent, and behind a trusted proxy counts each request against its real client's
//! address.

use std::{
    convert::Infallible,
    future::Future,
    net::{IpAddr, SocketAddr},
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
};

use axum::{
    Router,
    body::{Body, Bytes},
    extract::ConnectInfo,
    http::{Request, StatusCode},
    response::{IntoResponse, Response},
};
use http_body::{Frame, SizeHint};
use hyper::body::Incoming;
use tower::ServiceExt as _;

use super::{
    Edge,
    activity::{Activity, InFlight},
    tally::Slot,
};
use crate::{error::ApiError, metrics::Refused, routes::client_addr::address_key};

#[derive(Debug, Clone)]
pub struct ConnService {
    pub router: Router,
    pub peer: SocketAddr,
    pub activity: Arc<Activity>,
    /// Set when the peer is a trusted proxy: it was let in without a count at accept, and each
    /// request counts for the client it forwards instead.
    pub forwarded_for: Option<Arc<Edge>>,
}

type ResponseFuture = Pin<Box<dyn Future<Output = Result<Response, Infallible>> + Send>>;

impl hyper::service::Service<Request<Incoming>> for ConnService {
    type Response = Response;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture {
        let in_flight = self.activity.request_started();
        let mut request = request.map(Body::new);
        request.extensions_mut().insert(ConnectInfo(self.peer));
        let slot = match &self.forwarded_for {
            None => None,
            Some(edge) => {
                let client = edge.proxies.client_ip(self.peer.ip(), request.headers());
                match edge.per_address.take(address_key(client)) {
                    Some(slot) => Some(slot),
                    None => {
                        edge.metrics.refuse(Refused::PerAddress);
                        tracing::debug!(%client, "refused a request over the per-address cap");
                        let response = ApiError::TooManyRequests(
                            "too many connections from your address".into(),
                        )
                        .into_response();
                        return Box::pin(std::future::ready(Ok(tracked(
                            response, in_flight, None,
                        ))));
                    }
                }
            }
        };
        let router = self.router.clone();
        let activity = self.activity.clone();
        Box::pin(async move {
            let response = match router.oneshot(request).await {
                Ok(response) => response,
                Err(never) => match never {},
            };
            let slot = match slot {
                // An upgraded socket counts for its client as long as it is open.
                Some(slot) if response.status() == StatusCode::SWITCHING_PROTOCOLS => {
                    activity.keep(slot);
                    None
                }
                slot => slot,
            };
            Ok(tracked(response, in_flight, slot))
        })
    }
}

/// The response, holding the request's place until hyper has sent (or dropped) its body.
fn tracked(response: Response, in_flight: InFlight, slot: Option<Slot<IpAddr>>) -> Response {
    response.map(|body| {
        Body::new(Tracked {
            body,
            _held: (in_flight, slot),
        })
    })
}

struct Tracked {
    body: Body,
    _held: (InFlight, Option<Slot<IpAddr>>),
}

impl http_body::Body for Tracked {
    type Data = Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, axum::Error>>> {
        Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
