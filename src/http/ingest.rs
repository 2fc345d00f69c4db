//! `POST /api/ingest/{source}`: a JSON array, NDJSON or a MessagePack array of records into the
//! source's Kafka topic. Answers, each with a JSON body:
//!
//! - 202 `{"accepted": n}` once the broker acknowledged every record; 202 `{"accepted": n,
//!   "refused": [{"index": i, "error": "..."}]}` when some were refused for what they are (too
//!   large, invalid): the others were written, and sending the refused ones again will not help;
//! - 400 naming what is wrong (the body, or a record by its index or line);
//! - 404 for an unknown source; 413 for a body over the limit (refused before buffering it)
//!   or more records than the whole in-flight budget; 415 for another content type;
//! - 429 with `Retry-After` while the producer's in-flight budget is full; 503 with
//!   `Retry-After` while `max_requests` requests are being served; 408 for a body slower than
//!   `body_timeout`;
//! - 503 while the broker is away, or when it did not acknowledge every record (some may have
//!   been written: a retry may duplicate them).
//!
//! Open like `/metrics`: ingest is a data route, not an admin one; put it behind the host's
//! own authentication when embedding, or keep the listener on loopback.

use std::sync::Arc;

use actix_web::http::header;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::json;
use streamvisor_actors::metrics::IngestOutcome;
use streamvisor_actors::{PushFailed, PushRefused, RecordRefused};

use super::body::{read_body, refused_body, BodyRefused};
use super::HttpApi;
use crate::ingest::records::{BodyFormat, Encoded};

/// Seconds a client is told to wait after a 429.
const RETRY_AFTER_SECONDS: &str = "1";

pub(super) async fn ingest(
    api: web::Data<HttpApi>,
    source: web::Path<String>,
    request: HttpRequest,
    payload: web::Payload,
) -> HttpResponse {
    let ingests = api.runtime.ingests();
    let Some(point) = ingests.http(&source) else {
        return HttpResponse::NotFound()
            .json(json!({ "error": format!("no REST ingest called {:?}", source.as_str()) }));
    };
    let metrics = point.source.metrics();
    let answer =
        |outcome: IngestOutcome, mut response: actix_web::HttpResponseBuilder, why: String| {
            metrics.request(outcome);
            response.json(json!({ "error": why }))
        };
    let content_type = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default();
    let Some(format) = BodyFormat::from_content_type(content_type) else {
        return answer(
            IngestOutcome::UnsupportedType,
            HttpResponse::UnsupportedMediaType(),
            format!(
                "content type {content_type:?}: expected application/json (an array), \
                 application/x-ndjson or application/msgpack (an array)"
            ),
        );
    };
    if let Err(why) = point.source.broker_status() {
        return answer(
            IngestOutcome::Unready,
            HttpResponse::ServiceUnavailable(),
            format!("the broker is away: {why}"),
        );
    }
    if point.source.available() == 0 {
        // Full now: no need to read the body to say so.
        metrics.request(IngestOutcome::Busy);
        return HttpResponse::TooManyRequests()
            .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
            .json(json!({ "error": PushRefused::Busy.to_string() }));
    }
    let Ok(_slot) = Arc::clone(&point.slots).try_acquire_owned() else {
        metrics.request(IngestOutcome::Busy);
        return HttpResponse::ServiceUnavailable()
            .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
            .json(json!({ "error": "too many ingest requests at once: try again shortly" }));
    };
    let mut read = 0;
    let body = read_body(
        &request,
        payload,
        point.config.body_limit(),
        point.config.body_deadline(),
        &mut read,
    )
    .await;
    metrics.bytes.increment(read as u64);
    let body = match body {
        Ok(body) => body,
        Err(refused) => {
            metrics.request(match refused {
                BodyRefused::TooLarge { .. } => IngestOutcome::TooLarge,
                BodyRefused::Broken(_) | BodyRefused::TooSlow { .. } => IngestOutcome::BadRequest,
            });
            return refused_body(&refused);
        }
    };
    let mut records = Encoded::default();
    if let Err(error) = point.encoder.body(format, &body, &mut records) {
        return answer(
            IngestOutcome::BadRequest,
            HttpResponse::BadRequest(),
            error.to_string(),
        );
    }
    let reservation = match point.source.try_reserve(records.len()) {
        Ok(reservation) => reservation,
        Err(refused @ PushRefused::Busy) => {
            metrics.request(IngestOutcome::Busy);
            return HttpResponse::TooManyRequests()
                .insert_header((header::RETRY_AFTER, RETRY_AFTER_SECONDS))
                .json(json!({ "error": refused.to_string() }));
        }
        Err(refused @ PushRefused::TooMany { .. }) => {
            return answer(
                IngestOutcome::TooLarge,
                HttpResponse::PayloadTooLarge(),
                refused.to_string(),
            )
        }
        Err(refused @ PushRefused::BrokerAway(_)) => {
            return answer(
                IngestOutcome::Unready,
                HttpResponse::ServiceUnavailable(),
                refused.to_string(),
            )
        }
    };
    // Records over the record limit are refused alone; the others go.
    let limit = point.config.record_limit();
    let mut over = Vec::new();
    let mut sent = Vec::with_capacity(records.len());
    let to_send: Vec<_> = records
        .records()
        .enumerate()
        .filter_map(|(index, (key, value))| {
            if value.len() > limit {
                over.push(RecordRefused {
                    index,
                    why: format!(
                        "a record of {} bytes is over max_record ({limit})",
                        value.len()
                    ),
                });
                None
            } else {
                sent.push(index);
                Some((key, value))
            }
        })
        .collect();
    let pushed = reservation
        .send(to_send)
        .acknowledged()
        .await
        .map(|mut pushed| {
            for refused in &mut pushed.refused {
                refused.index = sent.get(refused.index).copied().unwrap_or(refused.index);
            }
            pushed.refused.append(&mut over);
            pushed.refused.sort_by_key(|refused| refused.index);
            pushed
        });
    match pushed {
        Ok(pushed) if pushed.refused.is_empty() => {
            metrics.request(IngestOutcome::Accepted);
            HttpResponse::Accepted().json(json!({ "accepted": pushed.accepted }))
        }
        Ok(pushed) => {
            metrics.request(IngestOutcome::PartlyRefused);
            metrics.refused.increment(pushed.refused.len() as u64);
            let refused: Vec<serde_json::Value> = pushed
                .refused
                .iter()
                .map(|refused| json!({ "index": refused.index, "error": refused.why }))
                .collect();
            HttpResponse::Accepted().json(json!({
                "accepted": pushed.accepted,
                "refused": refused,
            }))
        }
        Err(failed @ PushFailed::NotAcknowledged(_)) => answer(
            IngestOutcome::Failed,
            HttpResponse::ServiceUnavailable(),
            format!("{failed} (some records may have been written: a retry may duplicate them)"),
        ),
    }
}
