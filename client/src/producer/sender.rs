//! The producer's background task: takes ready batches, sends them to partition leaders,
//! retries, and answers every record exactly once.
//!
//! Owns: the producer id and each partition's next sequence number, the batches taken out of
//! the accumulator (in flight or waiting to be retried), requests in flight per broker, and
//! retry backoff per partition.
//!
//! Pipelining: up to `max_in_flight` requests per broker run at once, each holding at most
//! one batch per partition, and a partition may have up to `max_in_flight` batches in flight
//! (librdkafka and the Java client pipeline the same way; one batch at a time caps a
//! partition at one batch per round trip).
//!
//! Ordering: when a batch fails and will be retried, nothing newer of its partition is sent
//! until every batch of the partition in flight has been answered; then the failed batches go
//! again one at a time, oldest first, before anything newer. With idempotence the broker's
//! sequence checks refuse any batch that would overtake a failed one (OUT_OF_ORDER_SEQUENCE,
//! retried here as such while an older batch is being retried), so records of a partition
//! reach the log in the order they were accepted, retries included. Without idempotence a
//! batch sent after a failed one may already be written when the failed one is retried, as
//! in Kafka; `max_in_flight(1)` keeps the order then.
//!
//! Idempotence: a sequence number is given to a batch when it is taken and the batch keeps
//! its bytes (producer id, epoch, sequence) across retries, so a retry of a batch the broker
//! already has is answered with the original offsets and written once. A sequenced batch that
//! fails for good (an error retrying cannot fix, or `delivery_timeout`) leaves the broker's
//! expectation unknown; the producer then takes a new producer id and starts every partition
//! at sequence 0 again (a producer id the broker has never seen may start anywhere).
//!
//! Does not: batch records (the accumulator does), refuse records (`send` does), or decide
//! which partitions send which batch to which broker: the pure planner in
//! [`super::drain`] does, from a snapshot this task takes each round; this task takes the
//! batches it admits, seals them, and sends. Responses are applied in `sender/outcome.rs`.

use std::collections::{BTreeMap, BTreeSet, HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::{InitProducerIdRequest, ProduceRequest, ProduceResponse, TopicName};
use kafka_protocol::protocol::StrBytes;
use tokio::sync::mpsc;
use weir_protocol::record_batch::{Compression as Codec, HEADER_LEN, with_compressed_records};

use super::accumulator::{Batch, Reply, Reservation, TopicPartition};
use super::config::{Acks, Compression, ProducerConfig};
use super::drain;
use super::error::DeliveryError;
use super::{Shared, lock};
use crate::backoff::Backoff;
use crate::cluster::TopicInfo;
use crate::error::Error;
use crate::random::SplitMix64;

mod outcome;

/// A batch taken out of the accumulator, encoded and (when idempotent) sequenced.
#[derive(Debug)]
struct SentBatch {
    tp: TopicPartition,
    /// The encoded batch, identical on every attempt.
    records: Bytes,
    replies: Vec<(Reply, i64)>,
    /// Released when the batch is dropped.
    reservation: Reservation,
    created: Instant,
    first_ticket: u64,
    /// Its number among the partition's batches (`PartitionState::taken`).
    number: u64,
    /// It carries a producer id and sequence number.
    sequenced: bool,
    /// Why the last attempt failed.
    last_error: Option<Arc<Error>>,
}

/// What request tasks report back.
#[derive(Debug)]
enum Event {
    Produced {
        node: i32,
        batches: Vec<SentBatch>,
        /// `Ok(None)` for acks=0.
        outcome: Result<Option<ProduceResponse>, Error>,
    },
    ProducerId(Result<(i64, i16), Error>),
}

/// The producer id, when idempotent.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Identity {
    NotIdempotent,
    Missing { retry_at: Instant },
    Requesting,
    Ready { id: i64, epoch: i16 },
}

/// What [`Sender::take`] got for an admitted partition.
#[derive(Debug)]
enum Taken {
    Batch(SentBatch),
    /// A new batch too large to encode: to be failed.
    Unencodable(SentBatch),
    /// Nothing after all: no producer id yet, or the accumulator's batch went (expired).
    Nothing,
}

#[derive(Debug)]
struct PartitionState {
    /// The partition's batches in flight: first ticket -> the batch's number in the
    /// partition (see `taken`).
    in_flight: BTreeMap<u64, u64>,
    /// Batches of the partition taken from the accumulator so far: the next one's number.
    taken: u64,
    /// Batches to send again, oldest first, before anything newer: one at a time, once
    /// nothing of the partition is in flight and `retry_at` has come.
    retries: VecDeque<SentBatch>,
    retry_at: Instant,
    /// A sealed batch that did not fit in the last request: the next to go.
    unsent: Option<SentBatch>,
    /// The sequence of the next new batch, under the current producer id.
    next_sequence: i32,
    backoff: Backoff<SplitMix64>,
}

impl PartitionState {
    fn new(config: &ProducerConfig, now: Instant) -> Self {
        Self {
            in_flight: BTreeMap::new(),
            taken: 0,
            retries: VecDeque::new(),
            retry_at: now,
            unsent: None,
            next_sequence: 0,
            backoff: Backoff::new(
                config.retry_backoff,
                config.retry_backoff_max,
                SplitMix64::from_entropy(),
            ),
        }
    }

    /// What the drain planner needs to know of the partition.
    fn view(&self, leader: Option<i32>) -> drain::PartitionView {
        drain::PartitionView {
            leader,
            retry_at: (!self.retries.is_empty()).then_some(self.retry_at),
            has_unsent: self.unsent.is_some(),
            next_number: self.unsent.as_ref().map_or(self.taken, |b| b.number),
            in_flight: self.in_flight.len(),
            oldest_in_flight: self.in_flight.first_key_value().map(|(_, &number)| number),
        }
    }
}

/// The sender task's state.
#[derive(Debug)]
struct Sender {
    shared: Arc<Shared>,
    events_tx: mpsc::UnboundedSender<Event>,
    /// Bounded in practice: at most `max_in_flight` requests per broker plus one producer id
    /// request report here.
    events: mpsc::UnboundedReceiver<Event>,
    partitions: HashMap<TopicPartition, PartitionState>,
    /// Produce requests in flight per broker.
    in_flight: HashMap<i32, usize>,
    /// The queue of each broker's [`lane`].
    lanes: HashMap<i32, LaneQueue>,
    identity: Identity,
    identity_backoff: Backoff<SplitMix64>,
}

/// One broker's produce requests, in the order the sender made them.
type LaneQueue = mpsc::UnboundedSender<(ProduceRequest, Vec<SentBatch>)>;

/// Writes one broker's produce requests to its connection in the order the sender made them,
/// so that a partition's pipelined batches reach the broker in sequence order, and reports
/// each outcome as an [`Event`]. Responses are awaited apart, so requests stay pipelined.
/// Ends when the sender drops its queue.
async fn lane(
    shared: Arc<Shared>,
    node: i32,
    mut requests: mpsc::UnboundedReceiver<(ProduceRequest, Vec<SentBatch>)>,
    events: mpsc::UnboundedSender<Event>,
) {
    let config = &shared.config;
    let timeout = config.client.request_timeout;
    let timed_out = move || Error::Timeout(format!("Produce to broker {node}"));
    while let Some((request, batches)) = requests.recv().await {
        let deadline = tokio::time::Instant::now() + timeout;
        let queued = tokio::time::timeout_at(deadline, async {
            let connection = shared.cluster.node(node).await?;
            if config.acks == Acks::None {
                connection.send_only(request).await.map(|()| None)
            } else {
                connection.queue(request).await.map(Some)
            }
        })
        .await
        .unwrap_or_else(|_elapsed| Err(timed_out()));
        let events = events.clone();
        match queued {
            Ok(Some(response)) => {
                tokio::spawn(async move {
                    let outcome = tokio::time::timeout_at(deadline, response)
                        .await
                        .unwrap_or_else(|_elapsed| Err(timed_out()))
                        .map(Some);
                    let _closed = events.send(Event::Produced {
                        node,
                        batches,
                        outcome,
                    });
                });
            }
            outcome => {
                let _closed = events.send(Event::Produced {
                    node,
                    batches,
                    outcome: outcome.map(|_| None),
                });
            }
        }
    }
}

/// Runs until the producer is closing and every batch is answered.
pub(crate) async fn run(shared: Arc<Shared>) {
    let (events_tx, events) = mpsc::unbounded_channel();
    let config = &shared.config;
    let identity = if config.idempotence {
        Identity::Missing {
            retry_at: Instant::now(),
        }
    } else {
        Identity::NotIdempotent
    };
    let identity_backoff = Backoff::new(
        config.retry_backoff,
        config.retry_backoff_max,
        SplitMix64::from_entropy(),
    );
    let mut sender = Sender {
        shared,
        events_tx,
        events,
        partitions: HashMap::new(),
        in_flight: HashMap::new(),
        lanes: HashMap::new(),
        identity,
        identity_backoff,
    };
    sender.run().await;
}

impl Sender {
    async fn run(&mut self) {
        loop {
            let now = Instant::now();
            self.expire(now);
            let mut wake_at = self.request_identity(now);
            wake_at = earliest(wake_at, self.send_ready(now).await);
            let finished = {
                let accumulator = lock(&self.shared.accumulator);
                accumulator.closing && accumulator.is_idle()
            };
            if finished {
                tracing::debug!("producer closed: every record answered");
                return;
            }
            let sleep = tokio::time::sleep_until(
                wake_at
                    .unwrap_or_else(|| now + Duration::from_secs(3600))
                    .into(),
            );
            tokio::select! {
                () = self.shared.wake.notified() => {}
                Some(event) = self.events.recv() => self.handle(event).await,
                () = sleep => {}
            }
            // Take whatever else has arrived before looking at the batches again.
            while let Ok(event) = self.events.try_recv() {
                self.handle(event).await;
            }
        }
    }

    /// Asks for a producer id when one is needed and due; returns when to ask again.
    fn request_identity(&mut self, now: Instant) -> Option<Instant> {
        let Identity::Missing { retry_at } = self.identity else {
            return None;
        };
        if retry_at > now {
            return Some(retry_at);
        }
        self.identity = Identity::Requesting;
        let cluster = Arc::clone(&self.shared.cluster);
        let events = self.events_tx.clone();
        tokio::spawn(async move {
            let request = InitProducerIdRequest::default()
                .with_transactional_id(None)
                .with_transaction_timeout_ms(60_000);
            let outcome =
                cluster.call_any(request).await.and_then(|response| {
                    match Error::from_code(response.error_code, None, || {
                        "InitProducerId".to_owned()
                    }) {
                        Some(err) => Err(err),
                        None => Ok((response.producer_id.0, response.producer_epoch)),
                    }
                });
            // The sender is gone only once the producer is closed and idle.
            let _closed = events.send(Event::ProducerId(outcome));
        });
        None
    }

    /// Fails the batches that have waited longer than `delivery_timeout`.
    fn expire(&mut self, now: Instant) {
        let timeout = self.shared.config.delivery_timeout;
        let Some(deadline) = now.checked_sub(timeout) else {
            return;
        };
        let expired = lock(&self.shared.accumulator).expire(deadline);
        for batch in expired {
            tracing::debug!(topic = %batch.tp.topic, partition = batch.tp.partition, "batch expired before it was sent");
            self.answer_unsent(batch, DeliveryError::TimedOut { last_error: None });
        }
        let mut due = Vec::new();
        for state in self.partitions.values_mut() {
            while state.retries.front().is_some_and(|b| b.created <= deadline) {
                due.extend(state.retries.pop_front());
            }
            if state.unsent.as_ref().is_some_and(|b| b.created <= deadline) {
                due.extend(state.unsent.take());
            }
        }
        for batch in due {
            let last_error = batch.last_error.clone();
            self.fail(batch, DeliveryError::TimedOut { last_error }, now);
        }
    }

    /// Sends every batch that is ready and may go; returns when to look again (besides the
    /// events that wake the task anyway).
    async fn send_ready(&mut self, now: Instant) -> Option<Instant> {
        let config = &self.shared.config;
        let (candidates, mut wake_at) = self.candidates(now);
        if candidates.is_empty() {
            return wake_at;
        }
        let views = self.views(candidates).await;
        let limits = drain::Limits {
            max_in_flight: config.max_in_flight,
            max_request_size: config.max_request_size,
            retry_backoff: config.retry_backoff,
        };
        let admissions = drain::admit(&views, &self.in_flight, &limits, now);
        wake_at = earliest(wake_at, admissions.wake_at);
        let mut taken = Vec::new();
        let mut unencodable = Vec::new();
        for admission in admissions.go {
            match self.take(&admission, now) {
                Taken::Batch(batch) => taken.push((admission.node, batch)),
                Taken::Unencodable(batch) => unencodable.push(batch),
                Taken::Nothing => {}
            }
        }
        let placements = drain::pack(
            taken
                .iter()
                .map(|(node, batch)| (*node, batch.records.len())),
            limits.max_request_size,
        );
        let mut requests: BTreeMap<i32, Vec<SentBatch>> = BTreeMap::new();
        for ((node, batch), placement) in taken.into_iter().zip(placements) {
            let Some(state) = self.partitions.get_mut(&batch.tp) else {
                continue; // Not reached: taking a batch creates its partition's state.
            };
            match placement {
                drain::Placement::Request => {
                    state.in_flight.insert(batch.first_ticket, batch.number);
                    requests.entry(node).or_default().push(batch);
                }
                drain::Placement::NoRoom => {
                    // No room in this request: put it back in front, and come back at once.
                    if batch.last_error.is_some() {
                        state.retries.push_front(batch);
                    } else {
                        state.unsent = Some(batch);
                    }
                    wake_at = Some(now);
                }
            }
        }
        for batch in unencodable {
            let err = Error::InvalidArgument("the batch is too large to encode".to_owned());
            self.fail(batch, DeliveryError::Failed(Arc::new(err)), now);
        }
        if admissions.leaderless {
            self.shared.cluster.invalidate().await;
        }
        for (node, batches) in requests {
            self.dispatch(node, batches);
            // A request takes one batch per partition: look again at once for the next
            // ones (a round that sends nothing waits as usual, so this cannot spin).
            wake_at = Some(now);
        }
        wake_at
    }

    /// The partitions with something to send: ready in the accumulator, left out of the last
    /// request, or waiting to be retried. Also answers when to look again: at the next linger
    /// or delivery deadline, or when a retry's backoff ends.
    fn candidates(&self, now: Instant) -> (BTreeSet<TopicPartition>, Option<Instant>) {
        let config = &self.shared.config;
        let (ready, linger_at) = lock(&self.shared.accumulator).ready(now);
        let oldest = lock(&self.shared.accumulator).oldest();
        let mut wake_at = earliest(linger_at, oldest.map(|o| o + config.delivery_timeout));
        let mut candidates: BTreeSet<TopicPartition> = ready.into_iter().collect();
        for (tp, state) in &self.partitions {
            if let Some(batch) = &state.unsent {
                candidates.insert(tp.clone());
                wake_at = earliest(wake_at, Some(batch.created + config.delivery_timeout));
            }
            if let Some(batch) = state.retries.front() {
                candidates.insert(tp.clone());
                wake_at = earliest(wake_at, Some(batch.created + config.delivery_timeout));
                // A retry already due waits for something that wakes the task anyway (a
                // response, a producer id, metadata backoff); waking for it would spin.
                if state.retry_at > now {
                    wake_at = earliest(wake_at, Some(state.retry_at));
                }
            }
        }
        (candidates, wake_at)
    }

    /// What the drain planner needs to know of each candidate partition, leaders included.
    async fn views(
        &self,
        candidates: BTreeSet<TopicPartition>,
    ) -> BTreeMap<TopicPartition, drain::PartitionView> {
        let topics: BTreeSet<Arc<str>> =
            candidates.iter().map(|tp| Arc::clone(&tp.topic)).collect();
        let mut metadata: HashMap<Arc<str>, TopicInfo> = HashMap::new();
        for topic in topics {
            match self.shared.cluster.topic(&topic).await {
                Ok(info) => {
                    metadata.insert(topic, info);
                }
                Err(err) => tracing::debug!(%topic, error = %err, "no metadata to send with"),
            }
        }
        candidates
            .into_iter()
            .map(|tp| {
                let leader = metadata.get(&tp.topic).and_then(|info| {
                    info.partitions
                        .iter()
                        .find(|p| p.partition == tp.partition && p.leader >= 0)
                        .map(|p| p.leader)
                });
                let view = match self.partitions.get(&tp) {
                    Some(state) => state.view(leader),
                    None => drain::PartitionView {
                        leader,
                        retry_at: None,
                        has_unsent: false,
                        next_number: 0,
                        in_flight: 0,
                        oldest_in_flight: None,
                    },
                };
                (tp, view)
            })
            .collect()
    }

    /// Takes the batch the planner admitted out of the partition's retries, its unsent slot
    /// or the accumulator (sealing a new one with the next sequence).
    fn take(&mut self, admission: &drain::Admission, now: Instant) -> Taken {
        let config = &self.shared.config;
        let state = self
            .partitions
            .entry(admission.tp.clone())
            .or_insert_with(|| PartitionState::new(config, now));
        let batch = match admission.source {
            drain::Source::Retry => state.retries.pop_front(),
            drain::Source::Unsent => state.unsent.take(),
            drain::Source::Fresh => {
                let producer = match self.identity {
                    Identity::NotIdempotent => None,
                    Identity::Ready { id, epoch } => Some((id, epoch, state.next_sequence)),
                    Identity::Missing { .. } | Identity::Requesting => return Taken::Nothing,
                };
                let Some(batch) = lock(&self.shared.accumulator).take(&admission.tp, now) else {
                    return Taken::Nothing;
                };
                let count = batch.replies.len();
                let mut sent = seal(batch, producer, config.compression);
                sent.number = state.taken;
                state.taken += 1;
                if sent.records.is_empty() {
                    sent.sequenced = false;
                    return Taken::Unencodable(sent);
                }
                if producer.is_some() {
                    state.next_sequence = next_sequence(state.next_sequence, count);
                }
                Some(sent)
            }
        };
        batch.map_or(Taken::Nothing, Taken::Batch)
    }

    /// Starts one produce request to `node`.
    fn dispatch(&mut self, node: i32, batches: Vec<SentBatch>) {
        let config = &self.shared.config;
        *self.in_flight.entry(node).or_default() += 1;
        let mut topics: BTreeMap<Arc<str>, Vec<PartitionProduceData>> = BTreeMap::new();
        for batch in &batches {
            topics.entry(Arc::clone(&batch.tp.topic)).or_default().push(
                PartitionProduceData::default()
                    .with_index(batch.tp.partition)
                    .with_records(Some(batch.records.clone())),
            );
        }
        let timeout_ms =
            i32::try_from(config.client.request_timeout.as_millis()).unwrap_or(i32::MAX);
        let request = ProduceRequest::default()
            .with_acks(config.acks.code())
            .with_timeout_ms(timeout_ms)
            .with_topic_data(
                topics
                    .into_iter()
                    .map(|(topic, partitions)| {
                        TopicProduceData::default()
                            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                            .with_partition_data(partitions)
                    })
                    .collect(),
            );
        tracing::debug!(node, batches = batches.len(), "sending produce request");
        let lane = self.lanes.entry(node).or_insert_with(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            tokio::spawn(lane(
                Arc::clone(&self.shared),
                node,
                rx,
                self.events_tx.clone(),
            ));
            tx
        });
        if let Err(mpsc::error::SendError((_, batches))) = lane.send((request, batches)) {
            // Not reached: a lane lives as long as the sender holds its queue.
            let _closed = self.events_tx.send(Event::Produced {
                node,
                batches,
                outcome: Err(Error::Disconnected(std::net::SocketAddr::from(([0; 4], 0)))),
            });
        }
    }
}

/// Encodes a batch taken from the accumulator, with its producer id and first sequence, and
/// compresses it with `compression`. `records` is empty if the batch cannot be encoded (more
/// than `i32::MAX` bytes).
fn seal(batch: Batch, producer: Option<(i64, i16, i32)>, compression: Compression) -> SentBatch {
    let builder = match producer {
        Some((id, epoch, sequence)) => batch.builder.with_producer(id, epoch, sequence),
        None => batch.builder,
    };
    let records = builder
        .build()
        .map(|plain| compress_batch(plain, compression))
        .unwrap_or_default();
    SentBatch {
        tp: batch.tp,
        records,
        replies: batch.replies,
        reservation: batch.reservation,
        created: batch.created,
        first_ticket: batch.first_ticket,
        number: 0,
        sequenced: producer.is_some(),
        last_error: None,
    }
}

/// `plain` with its records section compressed, or `plain` itself when the codec is none,
/// fails, or does not make the batch smaller.
fn compress_batch(plain: Bytes, compression: Compression) -> Bytes {
    let codec = compression.codec();
    if codec == Codec::None {
        return plain;
    }
    let Some(records) = plain.get(HEADER_LEN..) else {
        return plain;
    };
    match crate::compression::compress(codec, records) {
        Ok(packed) if packed.len() < records.len() => {
            with_compressed_records(&plain, codec, &packed).unwrap_or(plain)
        }
        Ok(_) => plain,
        Err(err) => {
            tracing::debug!(error = %err, "sending a batch uncompressed");
            plain
        }
    }
}

/// The sequence after `count` records from `sequence`: Kafka's sequences wrap to 0 after
/// `i32::MAX`.
fn next_sequence(sequence: i32, count: usize) -> i32 {
    let modulus = 1_i64 << 31;
    let count = i64::try_from(count).unwrap_or(i64::MAX) % modulus;
    let next = (i64::from(sequence) + count) % modulus;
    i32::try_from(next).unwrap_or(0)
}

fn earliest(a: Option<Instant>, b: Option<Instant>) -> Option<Instant> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_wrap_after_i32_max() {
        assert_eq!(next_sequence(0, 5), 5);
        assert_eq!(next_sequence(i32::MAX - 1, 1), i32::MAX);
        assert_eq!(next_sequence(i32::MAX, 1), 0);
        assert_eq!(next_sequence(i32::MAX - 2, 10), 7);
    }
}
