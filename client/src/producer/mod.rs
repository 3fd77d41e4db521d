//! The producer: [`Producer::send`] accepts records into a bounded buffer, a background task
//! batches them per partition and writes them to the partition leaders, and each record's
//! [`DeliveryFuture`] says where it landed or why it did not.
//!
//! ```no_run
//! # async fn example() -> Result<(), Box<dyn std::error::Error>> {
//! use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
//!
//! let producer = Producer::new(ProducerConfig::new(["127.0.0.1:9092"]))?;
//! let delivery = producer
//!     .send(ProducerRecord::new("orders", "shipped").key("order-42"))
//!     .await?;
//! let written = delivery.await?;
//! println!("partition {} offset {}", written.partition, written.offset);
//! producer.close().await?; // everything answered, failures reported
//! # Ok(()) }
//! ```
//!
//! # Guarantees
//!
//! - **Backpressure, nothing dropped**: records hold buffer memory (`buffer_memory`) from
//!   `send` until they are answered. When it is full, `send` waits; after `max_block` it fails
//!   with a [`SendError`] that hands the record back.
//! - **Every accepted record is answered exactly once**, by the time `delivery_timeout` has
//!   passed: written (partition, offset) or failed ([`DeliveryError`]). `flush` and `close`
//!   report every failure since the previous flush or close ([`FlushError`]).
//! - **Order per partition**, retries included: one batch per partition in flight.
//! - **Written once** (idempotence, the default): a retried batch keeps its producer id and
//!   sequence numbers, so the broker answers a duplicate with the original offsets.
//!
//! # Layout
//!
//! - [`config`]: [`ProducerConfig`] and its defaults, [`Acks`], [`Compression`].
//! - [`record`]: [`ProducerRecord`], [`RecordMetadata`], [`DeliveryFuture`].
//! - [`error`]: [`SendError`], [`DeliveryError`], [`FlushError`].
//! - `accumulator`: batches per partition, buffer memory, sticky partitions, flush tickets.
//! - `sender`: the background task: leaders, requests in flight, retries, sequences.

mod accumulator;
pub mod config;
mod delivery;
mod drain;
pub mod error;
pub mod record;
mod sender;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use tokio::sync::{Notify, Semaphore, oneshot};
use tokio::task::JoinHandle;

use self::accumulator::{Accumulator, Reservation, TopicPartition};
pub use self::config::{Acks, Compression, ProducerConfig};
pub use self::delivery::DeliveryFuture;
pub use self::error::{DeliveryError, FailedBatch, FlushError, SendError, SendFailure};
pub use self::record::{ProducerRecord, RecordMetadata};
use crate::backoff::Backoff;
use crate::cluster::{Cluster, TopicInfo};
use crate::error::Result;
use crate::partitioner::partition_for_key;
use crate::random::SplitMix64;
use weir_protocol::error_code::ErrorCode;

/// State shared by the handles and the sender task.
#[derive(Debug)]
struct Shared {
    config: ProducerConfig,
    cluster: Arc<Cluster>,
    /// Waiting batches; locked briefly, never across an `.await`.
    accumulator: Mutex<Accumulator>,
    /// Buffer memory in bytes (one permit per byte).
    memory: Arc<Semaphore>,
    /// Tells the sender to look at the batches again.
    wake: Notify,
    /// A batch was answered (flush waits on it).
    completed: Notify,
    /// Failures since the last flush or close.
    failures: Mutex<FlushError>,
    /// What `send` needs of each topic's metadata, kept while the cluster's metadata epoch
    /// is unchanged, so that the common path takes no async lock and allocates nothing.
    routes: Mutex<HashMap<String, Route>>,
}

/// A topic's partition count and available partitions, as of a metadata epoch.
#[derive(Debug, Clone)]
struct Route {
    topic: Arc<str>,
    count: i32,
    available: Arc<[i32]>,
    epoch: u64,
    fetched: Instant,
}

/// Locks a mutex; a panic while it was held leaves data that is still consistent (every
/// critical section is a handful of map operations), so poisoning is ignored.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A producer. Cheap to clone; all clones share the buffer and the background task.
///
/// Dropping the last clone without [`Producer::close`] lets the task deliver what was
/// accepted (within `delivery_timeout`) and stop; nobody learns of failures then.
#[derive(Debug, Clone)]
pub struct Producer {
    handle: Arc<Handle>,
}

#[derive(Debug)]
struct Handle {
    shared: Arc<Shared>,
    /// The sender task, taken by the first `close`.
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        lock(&self.shared.accumulator).closing = true;
        self.shared.wake.notify_one();
    }
}

impl Producer {
    /// A producer with its own [`Cluster`]. Nothing is connected until the first record
    /// (the producer id is asked for at once when idempotent).
    ///
    /// Must be called within a Tokio runtime: it starts the background task.
    ///
    /// # Errors
    /// [`crate::Error::InvalidArgument`] for settings that do not go together
    /// ([`ProducerConfig::validate`]).
    pub fn new(config: ProducerConfig) -> Result<Self> {
        let cluster = Cluster::new(config.client.clone());
        Self::with_cluster(config, cluster)
    }

    /// A producer sharing `cluster` (its connections and metadata) with other clients;
    /// `config.client` is then unused except for `request_timeout`.
    ///
    /// # Errors
    /// As [`Producer::new`].
    pub fn with_cluster(config: ProducerConfig, cluster: Arc<Cluster>) -> Result<Self> {
        config.validate()?;
        let memory = Arc::new(Semaphore::new(
            config.buffer_memory.min(Semaphore::MAX_PERMITS),
        ));
        let shared = Arc::new(Shared {
            accumulator: Mutex::new(Accumulator::new(
                config.batch_size,
                config.max_request_size.saturating_sub(HEADER_BYTES),
                config.linger,
            )),
            config,
            cluster,
            memory,
            wake: Notify::new(),
            completed: Notify::new(),
            failures: Mutex::new(FlushError::default()),
            routes: Mutex::new(HashMap::new()),
        });
        let task = tokio::spawn(sender::run(Arc::clone(&shared)));
        Ok(Self {
            handle: Arc::new(Handle {
                shared,
                task: Mutex::new(Some(task)),
            }),
        })
    }

    /// The settings.
    pub fn config(&self) -> &ProducerConfig {
        &self.handle.shared.config
    }

    /// Accepts `record` for delivery and returns its handle once it is in the buffer.
    ///
    /// Waits (at most `max_block` in all) for the topic's metadata and for buffer room. The
    /// partition is the record's own, else `murmur2(key) % partitions` for a keyed record,
    /// else the topic's sticky partition. Records accepted one after another (each `send`
    /// awaited before the next) are written in that order within a partition.
    ///
    /// # Errors
    /// A [`SendError`] holding the record: buffer full for `max_block`, no metadata, record
    /// too large, no such partition, producer closed.
    #[allow(
        clippy::too_many_lines,
        reason = "every refusal hands the record back through `refuse`, and the steps (limits, route, partition, buffer room, append) run in this order on it; split up, each helper would take the record and give it back on failure"
    )]
    pub async fn send(&self, record: ProducerRecord) -> Result<DeliveryFuture, SendError> {
        let shared = &self.handle.shared;
        let config = &shared.config;
        let started = Instant::now();
        let deadline = started + config.max_block;
        let refuse = |record, reason| {
            Err(SendError {
                record: Box::new(record),
                reason,
            })
        };
        if lock(&shared.accumulator).closing {
            return refuse(record, SendFailure::Closed);
        }
        let size = record.size_bound();
        let limit = config
            .buffer_memory
            .min(config.max_request_size.saturating_sub(HEADER_BYTES))
            .min(u32::MAX as usize);
        if size > limit {
            return refuse(record, SendFailure::RecordTooLarge { size, limit });
        }
        let route = match self.route(&record.topic, started, deadline).await {
            Ok(route) => route,
            Err(err) if err.code() == Some(ErrorCode::UnknownTopicOrPartition) => {
                let auto_create = config.allow_auto_create_topics;
                return refuse(record, SendFailure::UnknownTopic { auto_create });
            }
            Err(err) => return refuse(record, SendFailure::Metadata(err)),
        };
        let count_i32 = route.count;
        let count = usize::try_from(count_i32).unwrap_or(0);
        let partition = match (record.partition, &record.key) {
            (Some(p), _) if (0..count_i32).contains(&p) => Some(p),
            (Some(p), _) => {
                return refuse(
                    record,
                    SendFailure::UnknownPartition {
                        partition: p,
                        count,
                    },
                );
            }
            (None, Some(key)) => partition_for_key(key, count_i32),
            (None, None) => lock(&shared.accumulator).sticky_partition(
                &record.topic,
                count_i32,
                &route.available,
            ),
        };
        let Some(partition) = partition else {
            return refuse(
                record,
                SendFailure::UnknownPartition {
                    partition: 0,
                    count,
                },
            );
        };
        // `size` fits a u32: it is at most `limit`.
        let permits = u32::try_from(size).unwrap_or(u32::MAX);
        // Room at once is the common case: no timer, no clock read.
        let mut waited = false;
        let acquired = match Arc::clone(&shared.memory).try_acquire_many_owned(permits) {
            Ok(permit) => Ok(Ok(permit)),
            Err(tokio::sync::TryAcquireError::Closed) => Ok(Err(())),
            Err(tokio::sync::TryAcquireError::NoPermits) => {
                waited = true;
                tokio::time::timeout_at(
                    deadline.into(),
                    Arc::clone(&shared.memory).acquire_many_owned(permits),
                )
                .await
                .map(|acquired| acquired.map_err(drop))
            }
        };
        let reservation = match acquired {
            Ok(Ok(permit)) => {
                permit.forget();
                Reservation::new(Arc::clone(&shared.memory), size)
            }
            Ok(Err(_closed)) => return refuse(record, SendFailure::Closed),
            Err(_elapsed) => {
                tracing::debug!(topic = %record.topic, size, "buffer full for max_block");
                return refuse(record, SendFailure::BufferFull(config.max_block));
            }
        };
        let timestamp = record.timestamp.unwrap_or_else(now_ms);
        let (reply, answer) = oneshot::channel();
        let tp = TopicPartition {
            topic: route.topic,
            partition,
        };
        let now = if waited { Instant::now() } else { started };
        let wake = {
            let mut accumulator = lock(&shared.accumulator);
            if accumulator.closing {
                drop(accumulator);
                drop(reservation);
                return refuse(record, SendFailure::Closed);
            }
            accumulator.append(tp, &record, timestamp, reservation, reply, now)
        };
        if wake {
            shared.wake.notify_one();
        }
        Ok(DeliveryFuture { reply: answer })
    }

    /// What `send` needs of the topic's metadata: the cached route while the cluster's
    /// metadata epoch is unchanged and it is younger than `metadata_max_age`, else fresh.
    async fn route(&self, topic: &str, now: Instant, deadline: Instant) -> Result<Route> {
        let shared = &self.handle.shared;
        let epoch = shared.cluster.metadata_epoch();
        let max_age = shared.config.client.metadata_max_age;
        if let Some(route) = lock(&shared.routes)
            .get(topic)
            .filter(|r| r.epoch == epoch && now.saturating_duration_since(r.fetched) < max_age)
        {
            return Ok(route.clone());
        }
        let info = self.metadata(topic, deadline).await?;
        let route = Route {
            topic: Arc::from(topic),
            count: i32::try_from(info.partitions.len()).unwrap_or(i32::MAX),
            available: info
                .partitions
                .iter()
                .filter(|p| p.leader >= 0 && p.error_code == 0)
                .map(|p| p.partition)
                .collect(),
            // The epoch read before fetching: a refresh meanwhile makes the next send look
            // again, never keeps an outdated route.
            epoch,
            fetched: Instant::now(),
        };
        lock(&shared.routes).insert(topic.to_owned(), route.clone());
        Ok(route)
    }

    /// The topic's metadata, retrying retriable failures (an unknown topic included, as it
    /// may be being created) until `deadline`.
    async fn metadata(&self, topic: &str, deadline: Instant) -> Result<TopicInfo> {
        let shared = &self.handle.shared;
        let mut backoff = None;
        let mut backoff = move || {
            backoff
                .get_or_insert_with(|| {
                    Backoff::new(
                        shared.config.retry_backoff,
                        shared.config.retry_backoff_max,
                        SplitMix64::from_entropy(),
                    )
                })
                .next()
        };
        loop {
            let auto_create = shared.config.allow_auto_create_topics;
            match shared.cluster.topic_with(topic, auto_create).await {
                Ok(info) if !info.partitions.is_empty() => return Ok(info),
                Ok(_) => {}
                Err(err) if !err.is_retriable() => return Err(err),
                Err(err) => {
                    let delay = backoff().unwrap_or(shared.config.retry_backoff_max);
                    if Instant::now() + delay >= deadline {
                        return Err(err);
                    }
                    tracing::debug!(%topic, error = %err, ?delay, "waiting for metadata");
                    tokio::time::sleep(delay).await;
                    continue;
                }
            }
            let delay = backoff().unwrap_or(shared.config.retry_backoff_max);
            if Instant::now() + delay >= deadline {
                return Err(crate::Error::Timeout(format!("metadata for {topic}")));
            }
            tokio::time::sleep(delay).await;
        }
    }

    /// Sends every record accepted so far without waiting for `linger`, and waits until each
    /// is answered (at most `delivery_timeout`).
    ///
    /// # Errors
    /// A [`FlushError`] listing the deliveries that failed since the previous flush or close,
    /// including any that failed before this call.
    pub async fn flush(&self) -> Result<(), FlushError> {
        let shared = &self.handle.shared;
        let target = lock(&shared.accumulator).flush_target();
        shared.wake.notify_one();
        self.wait_flushed(target).await;
        std::mem::take(&mut *lock(&shared.failures)).into_result()
    }

    async fn wait_flushed(&self, target: u64) {
        let shared = &self.handle.shared;
        loop {
            let completed = shared.completed.notified();
            tokio::pin!(completed);
            completed.as_mut().enable();
            if lock(&shared.accumulator).flushed(target) {
                return;
            }
            completed.await;
        }
    }

    /// Stops accepting records, delivers (or fails) every accepted one, and stops the
    /// background task. Later `send`s fail with [`SendFailure::Closed`]. Calling it again
    /// (or on a clone) waits the same way and reports what failed since.
    ///
    /// # Errors
    /// A [`FlushError`] listing the deliveries that failed since the previous flush or close.
    pub async fn close(&self) -> Result<(), FlushError> {
        let shared = &self.handle.shared;
        let target = {
            let mut accumulator = lock(&shared.accumulator);
            accumulator.closing = true;
            accumulator.flush_target()
        };
        shared.wake.notify_one();
        self.wait_flushed(target).await;
        let task = lock(&self.handle.task).take();
        if let Some(task) = task {
            if let Err(err) = task.await {
                tracing::error!(error = %err, "the producer's task failed");
            }
        }
        std::mem::take(&mut *lock(&shared.failures)).into_result()
    }
}

/// Bytes of a batch header, which `max_request_size` must leave room for.
const HEADER_BYTES: usize = weir_protocol::record_batch::HEADER_LEN;

/// The wall clock in ms since the epoch: a record's default create time (data, not logic).
fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}
