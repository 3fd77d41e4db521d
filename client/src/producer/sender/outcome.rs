//! How the sender applies what comes back: producer ids, produce responses, and the
//! outcome of each batch (answered, retried, or failed for good).
//!
//! Owns the retry decision for a failed batch and the answering of its records; part of
//! [`super`]'s task, split out only to keep the sending path and the answering path each
//! readable. Does not: choose what to send next (the drain planner in
//! [`crate::producer::drain`] does, from the state this module leaves behind) or do I/O
//! beyond refreshing metadata.
//!
//! # Invariants
//!
//! - Every batch taken out of the accumulator is answered exactly once: succeeded, failed,
//!   or put back in its partition's retries (in first-ticket order, so oldest first).
//! - One backoff per round of failures of a partition, however many of its batches failed.
//! - A sequenced batch that fails for good costs the producer id (see [`super`]).

use std::sync::Arc;
use std::time::Instant;

use kafka_protocol::messages::ProduceResponse;
use weir_protocol::error_code::ErrorCode;

use super::{Event, Identity, Sender, SentBatch};
use crate::error::Error;
use crate::producer::accumulator::{Batch, Reply, Reservation, TopicPartition};
use crate::producer::error::{DeliveryError, FailedBatch};
use crate::producer::lock;
use crate::producer::record::RecordMetadata;

impl Sender {
    pub(super) async fn handle(&mut self, event: Event) {
        let now = Instant::now();
        match event {
            Event::ProducerId(Ok((id, epoch))) => {
                tracing::debug!(producer_id = id, epoch, "producer id assigned");
                self.identity = Identity::Ready { id, epoch };
                self.identity_backoff.reset();
            }
            Event::ProducerId(Err(err)) => {
                let delay = self
                    .identity_backoff
                    .next()
                    .unwrap_or(self.shared.config.retry_backoff_max);
                tracing::debug!(error = %err, ?delay, "no producer id yet");
                self.identity = Identity::Missing {
                    retry_at: now + delay,
                };
            }
            Event::Produced {
                node,
                batches,
                outcome,
            } => {
                if let Some(count) = self.in_flight.get_mut(&node) {
                    *count = count.saturating_sub(1);
                }
                let stale = match outcome {
                    Err(err) => {
                        tracing::debug!(node, error = %err, "produce request failed");
                        let err = Arc::new(err);
                        for batch in batches {
                            self.retry_or_fail(batch, Arc::clone(&err), now);
                        }
                        true
                    }
                    Ok(None) => {
                        for batch in batches {
                            self.succeed(batch, -1);
                        }
                        false
                    }
                    Ok(Some(response)) => self.answer(node, batches, &response, now),
                };
                if stale {
                    self.shared.cluster.invalidate().await;
                }
            }
        }
    }

    /// Applies a produce response; returns whether metadata looks stale.
    pub(super) fn answer(
        &mut self,
        node: i32,
        batches: Vec<SentBatch>,
        response: &ProduceResponse,
        now: Instant,
    ) -> bool {
        let mut stale = false;
        for batch in batches {
            let found = response
                .responses
                .iter()
                .filter(|t| *t.name.0 == *batch.tp.topic)
                .flat_map(|t| &t.partition_responses)
                .find(|p| p.index == batch.tp.partition);
            let Some(partition) = found else {
                let err = Error::Kafka {
                    code: ErrorCode::UnknownServerError.code(),
                    message: Some("the response leaves the partition out".to_owned()),
                    context: format!("Produce to broker {node}"),
                };
                self.retry_or_fail(batch, Arc::new(err), now);
                continue;
            };
            let context = || format!("Produce to {}-{}", batch.tp.topic, batch.tp.partition);
            match Error::from_code(
                partition.error_code,
                partition.error_message.as_deref(),
                context,
            ) {
                None => self.succeed(batch, partition.base_offset),
                Some(err) => {
                    stale |= matches!(
                        err.code(),
                        Some(
                            ErrorCode::NotLeaderOrFollower
                                | ErrorCode::UnknownTopicOrPartition
                                | ErrorCode::LeaderNotAvailable
                        )
                    );
                    self.retry_or_fail(batch, Arc::new(err), now);
                }
            }
        }
        stale
    }

    pub(super) fn retry_or_fail(&mut self, mut batch: SentBatch, err: Arc<Error>, now: Instant) {
        let delivery_timeout = self.shared.config.delivery_timeout;
        let Some(state) = self.partitions.get_mut(&batch.tp) else {
            self.fail(batch, DeliveryError::Failed(err), now);
            return;
        };
        state.in_flight.remove(&batch.first_ticket);
        // The broker refuses a batch whose predecessor it does not have; while an older batch
        // of the partition failed (or may yet), this one is simply sent again after it.
        let behind_a_failure = err.code() == Some(ErrorCode::OutOfOrderSequenceNumber)
            && (state
                .retries
                .iter()
                .any(|b| b.first_ticket < batch.first_ticket)
                || state.in_flight.range(..batch.first_ticket).next().is_some());
        if !err.is_retriable() && !behind_a_failure {
            tracing::debug!(topic = %batch.tp.topic, partition = batch.tp.partition, error = %err, "batch failed");
            self.fail(batch, DeliveryError::Failed(err), now);
        } else if now >= batch.created + delivery_timeout {
            self.fail(
                batch,
                DeliveryError::TimedOut {
                    last_error: Some(err),
                },
                now,
            );
        } else {
            // One backoff per round of failures, however many batches were in flight.
            if state.retries.is_empty() {
                let delay = state
                    .backoff
                    .next()
                    .unwrap_or(self.shared.config.retry_backoff_max);
                state.retry_at = now + delay;
            }
            tracing::debug!(topic = %batch.tp.topic, partition = batch.tp.partition, error = %err, retry_at = ?state.retry_at, "retrying batch");
            batch.last_error = Some(err);
            let at = state
                .retries
                .partition_point(|b| b.first_ticket < batch.first_ticket);
            state.retries.insert(at, batch);
        }
    }

    pub(super) fn succeed(&mut self, batch: SentBatch, base_offset: i64) {
        if let Some(state) = self.partitions.get_mut(&batch.tp) {
            state.in_flight.remove(&batch.first_ticket);
            if state.retries.is_empty() {
                state.backoff.reset();
            }
        }
        let SentBatch {
            tp,
            replies,
            reservation,
            first_ticket,
            ..
        } = batch;
        for (offset_delta, (reply, timestamp)) in (0_i64..).zip(replies) {
            let offset = if base_offset < 0 {
                -1
            } else {
                base_offset.saturating_add(offset_delta)
            };
            // The caller may have dropped its handle; the outcome is then not wanted.
            let _unwanted = reply.send(Ok(RecordMetadata {
                topic: tp.topic.to_string(),
                partition: tp.partition,
                offset,
                timestamp,
            }));
        }
        drop(reservation);
        self.complete(&tp, first_ticket, true);
    }

    /// Fails a batch taken out of the accumulator; a sequenced one costs the producer id.
    pub(super) fn fail(&mut self, batch: SentBatch, error: DeliveryError, now: Instant) {
        if let Some(state) = self.partitions.get_mut(&batch.tp) {
            state.in_flight.remove(&batch.first_ticket);
        }
        if batch.sequenced && matches!(self.identity, Identity::Ready { .. }) {
            tracing::debug!("a sequenced batch failed: taking a new producer id");
            self.identity = Identity::Missing { retry_at: now };
            for state in self.partitions.values_mut() {
                state.next_sequence = 0;
            }
        }
        let SentBatch {
            tp,
            replies,
            reservation,
            first_ticket,
            ..
        } = batch;
        self.give_up(&tp, replies, reservation, first_ticket, &error, true);
    }

    /// Fails a batch that never left the accumulator (no sequence spent).
    pub(super) fn answer_unsent(&mut self, batch: Batch, error: DeliveryError) {
        let Batch {
            tp,
            replies,
            reservation,
            first_ticket,
            ..
        } = batch;
        self.give_up(&tp, replies, reservation, first_ticket, &error, false);
    }

    /// The end of a failed batch, sent or not: every record's delivery gets `error`, its
    /// buffer memory is released, and the partition's order moves past it.
    fn give_up(
        &mut self,
        tp: &TopicPartition,
        replies: Vec<(Reply, i64)>,
        reservation: Reservation,
        first_ticket: u64,
        error: &DeliveryError,
        taken: bool,
    ) {
        self.report(tp, replies, error);
        drop(reservation);
        self.complete(tp, first_ticket, taken);
    }

    pub(super) fn report(
        &self,
        tp: &TopicPartition,
        replies: Vec<(Reply, i64)>,
        error: &DeliveryError,
    ) {
        let records = replies.len();
        for (reply, _) in replies {
            let _unwanted = reply.send(Err(error.clone()));
        }
        lock(&self.shared.failures).record(FailedBatch {
            topic: tp.topic.to_string(),
            partition: tp.partition,
            records,
            error: error.clone(),
        });
    }

    pub(super) fn complete(&self, tp: &TopicPartition, first_ticket: u64, taken: bool) {
        lock(&self.shared.accumulator).complete(tp, first_ticket, taken);
        self.shared.completed.notify_waiters();
    }
}
