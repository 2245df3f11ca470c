//! The request body idle timeout: every body fails if no byte arrives for `--body-timeout`,
//! and `stalled` recognises that failure under whatever extractor error reports it.

use std::{error::Error, time::Duration};

use axum::body::Body;
use tower_http::{
    map_request_body::MapRequestBodyLayer,
    timeout::{TimeoutBody, TimeoutError},
};

/// What a client whose body stalled is told.
pub const REASON: &str = "the request body stopped arriving";

/// Wraps every request body. The clock runs only while a handler waits for the next bytes,
/// so time spent writing an upload to disk is not counted against the client.
pub fn layer(timeout: Duration) -> MapRequestBodyLayer<impl Fn(Body) -> Body + Clone> {
    MapRequestBodyLayer::new(move |body| Body::new(TimeoutBody::new(timeout, body)))
}

/// Whether the body timeout is somewhere in `error`'s chain of sources: extractors wrap the
/// body's error once or twice (multer, axum, the body limit) before a handler sees it.
pub fn stalled(error: &(dyn Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<TimeoutError>() {
            return true;
        }
        next = error.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("outer")]
    struct Outer(#[source] Box<dyn Error + Send + Sync>);

    #[tokio::test]
    async fn a_stalled_body_fails_with_an_error_stalled_recognises() {
        use futures_util::{StreamExt as _, stream};
        let one_chunk_then_silence =
            stream::once(async { Ok::<_, std::io::Error>("a") }).chain(stream::pending());
        let body = Body::from_stream(one_chunk_then_silence);
        let mut body =
            Body::new(TimeoutBody::new(Duration::from_millis(50), body)).into_data_stream();
        assert!(body.next().await.unwrap().is_ok());
        let error = body.next().await.unwrap().unwrap_err();
        assert!(stalled(&Outer(Box::new(error))));
        assert!(!stalled(&Outer("other".into())));
    }
}
