//! InitProducerId (key 22), v0-1: a fresh producer id for an idempotent producer.
//!
//! Every call returns a new id with epoch 0 (ids come from the durable allocator in
//! [`crate::producers::ids`], so they are never reused across restarts). Transactions are not
//! supported: a request with a transactional id gets TRANSACTIONAL_ID_AUTHORIZATION_FAILED,
//! which clients treat as fatal rather than retrying (an empty transactional id gets
//! INVALID_REQUEST, as from Kafka's transaction coordinator).

use std::sync::Arc;

use kafka_protocol::messages::{InitProducerIdRequest, InitProducerIdResponse, ProducerId};
use weir_protocol::error_code::ErrorCode;

use super::Context;

pub(crate) async fn handle(
    ctx: &Arc<Context>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let refused = |code: ErrorCode| {
        InitProducerIdResponse::default()
            .with_error_code(code.code())
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    match request.transactional_id.as_ref().map(|id| id.as_str()) {
        None => {}
        Some("") => return refused(ErrorCode::InvalidRequest),
        Some(_) => return refused(ErrorCode::TransactionalIdAuthorizationFailed),
    }
    if let Some(node) = &ctx.cluster {
        // Blocks of ids come from the controller, so no two brokers give the same id.
        return match node.next_producer_id().await {
            Ok(id) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(0),
            Err(err) => {
                tracing::warn!(error = %err, "cannot reserve producer ids");
                refused(ErrorCode::CoordinatorNotAvailable)
            }
        };
    }
    let ctx = Arc::clone(ctx);
    // A new block of ids is synced to disk first: keep that off the async workers.
    let allocated =
        tokio::task::spawn_blocking(move || ctx.producer_ids.allocate(&*ctx.disk)).await;
    match allocated {
        Ok(Ok(id)) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Ok(Err(err)) => {
            tracing::error!(error = %err, "cannot allocate a producer id");
            refused(ErrorCode::KafkaStorageError)
        }
        Err(join) => {
            tracing::error!(error = %join, "producer id allocation panicked");
            refused(ErrorCode::UnknownServerError)
        }
    }
}
