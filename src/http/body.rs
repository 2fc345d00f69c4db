//! Request bodies read under a limit: a `Content-Length` over it is refused before any byte is
//! read, and a body without one (chunked) is cut off as soon as it passes the limit, so a
//! client never makes the server buffer more than the limit plus one chunk.

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde_json::json;

/// Why a body was not read whole.
#[derive(Debug)]
pub(super) enum BodyRefused {
    /// Over the limit (413).
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// The stream broke (400).
    Broken(String),
    /// It did not arrive within its deadline (408).
    TooSlow {
        /// The deadline.
        deadline: std::time::Duration,
    },
}

impl BodyRefused {
    /// The message for the client.
    pub(super) fn message(&self) -> String {
        match self {
            BodyRefused::TooLarge { limit } => format!("the body is over {limit} bytes"),
            BodyRefused::Broken(why) => format!("bad request body: {why}"),
            BodyRefused::TooSlow { deadline } => {
                format!("the body did not arrive within {deadline:?}")
            }
        }
    }
}

/// Reads the body of `request` from `payload`, at most `limit` bytes within `deadline`; `read`
/// counts the bytes taken from the connection, whatever the outcome.
pub(super) async fn read_body(
    request: &HttpRequest,
    payload: web::Payload,
    limit: usize,
    deadline: std::time::Duration,
    read: &mut usize,
) -> Result<Vec<u8>, BodyRefused> {
    tokio::time::timeout(deadline, read_all(request, payload, limit, read))
        .await
        .unwrap_or(Err(BodyRefused::TooSlow { deadline }))
}

async fn read_all(
    request: &HttpRequest,
    mut payload: web::Payload,
    limit: usize,
    read: &mut usize,
) -> Result<Vec<u8>, BodyRefused> {
    let declared = request
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.parse::<usize>().ok());
    if declared.is_some_and(|length| length > limit) {
        return Err(BodyRefused::TooLarge { limit });
    }
    let mut body = Vec::with_capacity(declared.unwrap_or(0));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|error| BodyRefused::Broken(error.to_string()))?;
        *read += chunk.len();
        if body.len() + chunk.len() > limit {
            return Err(BodyRefused::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// The answer to a body that was not read whole.
pub(super) fn refused_body(refused: &BodyRefused) -> HttpResponse {
    let body = json!({ "error": refused.message() });
    match refused {
        BodyRefused::TooLarge { .. } => HttpResponse::PayloadTooLarge().json(body),
        BodyRefused::Broken(_) => HttpResponse::BadRequest().json(body),
        // The connection is closed after the answer: the rest of the body never comes.
        BodyRefused::TooSlow { .. } => HttpResponse::RequestTimeout()
            .insert_header((actix_web::http::header::CONNECTION, "close"))
            .json(body),
    }
}
