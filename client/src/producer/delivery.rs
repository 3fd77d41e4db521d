//! [`DeliveryFuture`]: what `send` hands back, resolving to where the record landed or why it
//! was never written. The sender task answers it exactly once.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::sync::oneshot;

use super::error::DeliveryError;
use super::record::RecordMetadata;

/// Resolves when the broker acknowledged the record (or it failed for good).
///
/// Dropping it does not cancel the delivery; the outcome is then only seen by
/// [`super::Producer::flush`] and [`super::Producer::close`] if it is a failure.
#[derive(Debug)]
#[must_use = "a delivery handle tells whether the record was written"]
pub struct DeliveryFuture {
    /// Answered by the sender task exactly once.
    pub(crate) reply: oneshot::Receiver<Result<RecordMetadata, DeliveryError>>,
}

impl Future for DeliveryFuture {
    type Output = Result<RecordMetadata, DeliveryError>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        Pin::new(&mut self.reply)
            .poll(cx)
            .map(|answer| answer.unwrap_or(Err(DeliveryError::Aborted)))
    }
}
