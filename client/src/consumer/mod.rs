//! The consumer: records from assigned partitions (`assign`) or from a consumer group's
//! share of subscribed topics (`subscribe`), with committed offsets.
//!
//! ```no_run
//! # async fn example() -> weir_client::Result<()> {
//! use std::time::Duration;
//! use weir_client::{ClientConfig, Consumer, ConsumerConfig, OffsetReset};
//!
//! let config = ConsumerConfig::new(ClientConfig::new(["127.0.0.1:9092"]))
//!     .group_id("billing")
//!     .auto_offset_reset(OffsetReset::Earliest);
//! let mut consumer = Consumer::new(config);
//! consumer.subscribe(["orders"])?;
//! loop {
//!     for record in consumer.poll(Duration::from_secs(1)).await? {
//!         println!("{}-{}@{}: {:?}", record.topic, record.partition, record.offset, record.value);
//!     }
//! #   break;
//! }
//! consumer.close().await
//! # }
//! ```
//!
//! # How it works
//!
//! Two background tasks do the I/O, both aborted when the consumer is dropped:
//! `fetcher.rs` resolves positions and keeps one long-polling fetch in flight per leader,
//! within the prefetch bounds; `group.rs` (with `subscribe`) joins the group, heartbeats and
//! handles rebalances. The application's calls only move records out of the shared buffer
//! (`state.rs`) and send commits (`offsets.rs`).
//!
//! # Delivery
//!
//! At least once. A record counts as processed once the application calls `poll` (or
//! `next`) again after receiving it; auto-commit (every `auto_commit_interval`, checked in
//! `poll`) and the commit before a rebalance revokes partitions cover only processed
//! records. [`Consumer::commit`] commits everything returned so far: call it after
//! processing.

mod assignor;
mod config;
mod fetch_plan;
mod fetcher;
mod group;
mod offsets;
mod record;
mod state;

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio::time::Instant;
use weir_protocol::error_code::ErrorCode;

pub use assignor::Assignor;
pub use config::{ConsumerConfig, OffsetReset};
pub use record::{ConsumerRecord, RecordHeader, TopicPartition};
use state::{Generation, Processed, Shared};

use crate::error::{Error, Result};

/// How partitions are chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    /// Nothing yet.
    Idle,
    /// `assign`: the application's partitions; commits are simple commits.
    Assigned,
    /// `subscribe`: the group's assignment for these topics.
    Subscribed(Vec<String>),
}

/// A Kafka consumer. See the [module documentation](self).
#[derive(Debug)]
pub struct Consumer {
    shared: Arc<Shared>,
    mode: Mode,
    /// The fetch task, started by the first async call.
    fetcher: Option<JoinHandle<()>>,
    /// The membership task (with `subscribe`).
    group: Option<JoinHandle<()>>,
    /// When `poll` commits next (with auto-commit).
    next_auto_commit: Instant,
}

impl Consumer {
    /// A consumer with these settings; nothing is connected until the first `poll`.
    pub fn new(config: ConsumerConfig) -> Self {
        let next_auto_commit = Instant::now() + config.auto_commit_interval;
        Self {
            shared: Shared::new(config),
            mode: Mode::Idle,
            fetcher: None,
            group: None,
            next_auto_commit,
        }
    }

    /// The settings.
    pub fn config(&self) -> &ConsumerConfig {
        &self.shared.config
    }

    /// Consumes exactly these partitions, without group membership. Partitions already
    /// assigned keep their positions; new ones start from the committed offset (with a
    /// group id) or the reset policy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] after `subscribe`; [`Error::InvalidTopicName`].
    pub fn assign(&mut self, partitions: impl IntoIterator<Item = TopicPartition>) -> Result<()> {
        if matches!(self.mode, Mode::Subscribed(_)) {
            return Err(Error::InvalidArgument(
                "assign after subscribe; use one or the other".to_owned(),
            ));
        }
        let partitions: Vec<TopicPartition> = partitions.into_iter().collect();
        for tp in &partitions {
            crate::topic_name::check(&tp.topic)?;
        }
        self.mode = Mode::Assigned;
        self.shared.lock().assign(partitions);
        self.shared.fetch_wake.notify_one();
        Ok(())
    }

    /// Joins the consumer group (the first `poll` starts it) and consumes the partitions of
    /// `topics` it assigns to this member. A new subscription replaces the previous one.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] without a group id, or after `assign`;
    /// [`Error::InvalidTopicName`].
    pub fn subscribe<I, S>(&mut self, topics: I) -> Result<()>
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        if self.shared.config.group_id.is_none() {
            return Err(Error::InvalidArgument(
                "subscribe needs a group id".to_owned(),
            ));
        }
        if self.mode == Mode::Assigned {
            return Err(Error::InvalidArgument(
                "subscribe after assign; use one or the other".to_owned(),
            ));
        }
        let mut topics: Vec<String> = topics.into_iter().map(Into::into).collect();
        for topic in &topics {
            crate::topic_name::check(topic)?;
        }
        topics.sort();
        topics.dedup();
        if self.mode == Mode::Subscribed(topics.clone()) {
            return Ok(());
        }
        if let Some(task) = self.group.take() {
            task.abort();
        }
        self.shared.lock().assign(Vec::new());
        self.mode = Mode::Subscribed(topics);
        Ok(())
    }

    /// The partitions currently assigned (for `subscribe`: empty while rebalancing).
    pub fn assignment(&self) -> Vec<TopicPartition> {
        self.shared.lock().partitions.keys().cloned().collect()
    }

    /// Bytes fetched and not yet returned by `poll`, all partitions together.
    pub fn buffered_bytes(&self) -> usize {
        self.shared.lock().buffered_bytes
    }

    fn ensure_started(&mut self) {
        if self.fetcher.is_none() {
            self.fetcher = Some(tokio::spawn(fetcher::run(Arc::clone(&self.shared))));
        }
        if let (Mode::Subscribed(topics), None) = (&self.mode, &self.group) {
            self.group = Some(tokio::spawn(group::run(
                Arc::clone(&self.shared),
                topics.clone(),
            )));
        }
    }

    /// Records that arrive within `timeout` (at most `max_poll_records`), empty if none.
    /// Also runs auto-commit when due.
    ///
    /// # Errors
    /// A failure of a fetch, an offset lookup or the group that the application must know
    /// about (each reported once); retriable failures are retried in the background.
    pub async fn poll(&mut self, timeout: Duration) -> Result<Vec<ConsumerRecord>> {
        let max = self.shared.config.max_poll_records;
        self.take(max, Some(Instant::now() + timeout)).await
    }

    /// The next record, waiting as long as it takes: the consumer as a stream.
    ///
    /// # Errors
    /// As [`Self::poll`].
    pub async fn next(&mut self) -> Result<ConsumerRecord> {
        loop {
            if let Some(record) = self.take(1, None).await?.pop() {
                return Ok(record);
            }
        }
    }

    /// The records as a [`Stream`](futures_util::Stream), one [`Self::next`] after another:
    /// use it with `StreamExt` (`take`, `filter`, `for_each`...). It never ends by itself;
    /// each error is an item, and the stream goes on after it.
    ///
    /// ```no_run
    /// # async fn example(consumer: &mut weir_client::Consumer) -> weir_client::Result<()> {
    /// use futures_util::StreamExt;
    ///
    /// let first: Vec<_> = consumer.stream().take(10).collect().await;
    /// for record in first {
    ///     println!("{:?}", record?.value);
    /// }
    /// # Ok(())
    /// # }
    /// ```
    pub fn stream(&mut self) -> impl futures_util::Stream<Item = Result<ConsumerRecord>> + '_ {
        futures_util::stream::unfold(self, |consumer| async move {
            let item = consumer.next().await;
            Some((item, consumer))
        })
    }

    async fn take(&mut self, max: usize, deadline: Option<Instant>) -> Result<Vec<ConsumerRecord>> {
        self.ensure_started();
        {
            let mut state = self.shared.lock();
            for p in state.partitions.values_mut() {
                p.consumed = p.position;
            }
        }
        self.maybe_auto_commit().await;
        loop {
            let woken = self.shared.data_wake.notified();
            {
                let mut state = self.shared.lock();
                if let Some(err) = state.errors.pop_front() {
                    return Err(err);
                }
                let records = state.take(max);
                if !records.is_empty() {
                    drop(state);
                    self.shared.fetch_wake.notify_one();
                    return Ok(records);
                }
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline, woken).await.is_err() {
                        return Ok(Vec::new());
                    }
                }
                None => woken.await,
            }
        }
    }

    async fn maybe_auto_commit(&mut self) {
        let config = &self.shared.config;
        if config.group_id.is_none()
            || !config.enable_auto_commit
            || Instant::now() < self.next_auto_commit
        {
            return;
        }
        self.next_auto_commit = Instant::now() + config.auto_commit_interval;
        let Ok(generation) = self.generation() else {
            return;
        };
        let offsets = self.shared.lock().uncommitted(Processed::EarlierPolls);
        if let Err(err) = offsets::commit(&self.shared, &generation, &offsets).await {
            tracing::warn!(error = %err, "auto-commit failed");
        }
    }

    /// Commits under: the group generation (with `subscribe`), else a simple commit.
    fn generation(&self) -> Result<Generation> {
        match self.mode {
            Mode::Subscribed(_) => self.shared.lock().generation.clone().ok_or(Error::Kafka {
                code: ErrorCode::RebalanceInProgress.code(),
                message: Some("the group is rebalancing; no partitions are owned".to_owned()),
                context: "committing".to_owned(),
            }),
            _ => Ok(Generation::simple()),
        }
    }

    fn positions(&self) -> BTreeMap<TopicPartition, i64> {
        self.shared
            .lock()
            .partitions
            .iter()
            .filter_map(|(tp, p)| p.position.map(|o| (tp.clone(), o)))
            .collect()
    }

    /// Commits the position of every assigned partition: everything `poll` returned so far.
    ///
    /// # Errors
    /// No group id, a rebalance in progress (retriable once it ends), or the broker's error.
    pub async fn commit(&self) -> Result<()> {
        let generation = self.generation()?;
        offsets::commit(&self.shared, &generation, &self.positions()).await
    }

    /// Commits these offsets (each the offset of the next record to read).
    ///
    /// # Errors
    /// As [`Self::commit`].
    pub async fn commit_offsets(
        &self,
        offsets: impl IntoIterator<Item = (TopicPartition, i64)>,
    ) -> Result<()> {
        let generation = self.generation()?;
        let offsets = offsets.into_iter().collect();
        offsets::commit(&self.shared, &generation, &offsets).await
    }

    /// Like [`Self::commit`] without waiting: the positions are taken now and committed by a
    /// task; await the handle for the result, or drop it.
    pub fn commit_async(&self) -> JoinHandle<Result<()>> {
        let shared = Arc::clone(&self.shared);
        let generation = self.generation();
        let offsets = self.positions();
        tokio::spawn(async move { offsets::commit(&shared, &generation?, &offsets).await })
    }

    /// The group's committed offsets for `partitions` (those without one are left out).
    ///
    /// # Errors
    /// No group id, or the broker's error.
    pub async fn committed(
        &self,
        partitions: &[TopicPartition],
    ) -> Result<HashMap<TopicPartition, i64>> {
        offsets::committed(&self.shared, partitions).await
    }

    fn with_partition<T>(
        &self,
        tp: &TopicPartition,
        f: impl FnOnce(&mut state::PartitionState, &mut usize) -> T,
    ) -> Result<T> {
        let mut guard = self.shared.lock();
        let state = &mut *guard;
        let p = state
            .partitions
            .get_mut(tp)
            .ok_or_else(|| Error::InvalidArgument(format!("{tp} is not assigned")))?;
        let out = f(p, &mut state.buffered_bytes);
        state.check_invariants();
        drop(guard);
        self.shared.fetch_wake.notify_one();
        Ok(out)
    }

    /// The next `poll` returns `tp`'s records from `offset` on.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned.
    pub fn seek(&mut self, tp: &TopicPartition, offset: i64) -> Result<()> {
        self.with_partition(tp, |p, buffered| {
            *buffered -= p.clear();
            p.position = Some(offset);
            p.fetch_offset = offset;
            p.reset = None;
            p.resolving = false;
        })
    }

    /// Moves `tp` to its log start offset (resolved in the background).
    ///
    /// # Errors
    /// As [`Self::seek`].
    pub fn seek_to_beginning(&mut self, tp: &TopicPartition) -> Result<()> {
        self.seek_reset(tp, OffsetReset::Earliest)
    }

    /// Moves `tp` to its log end offset (resolved in the background).
    ///
    /// # Errors
    /// As [`Self::seek`].
    pub fn seek_to_end(&mut self, tp: &TopicPartition) -> Result<()> {
        self.seek_reset(tp, OffsetReset::Latest)
    }

    fn seek_reset(&mut self, tp: &TopicPartition, reset: OffsetReset) -> Result<()> {
        self.with_partition(tp, |p, buffered| {
            *buffered -= p.clear();
            p.position = None;
            p.reset = Some(reset);
            p.resolving = false;
        })
    }

    /// The offset of the next record `poll` returns for `tp`, waiting (up to the request
    /// timeout) for it to be resolved from the committed offset or the reset policy.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when `tp` is not assigned; [`Error::Timeout`]; or the
    /// failure that stopped the lookup.
    pub async fn position(&mut self, tp: &TopicPartition) -> Result<i64> {
        self.ensure_started();
        let deadline = Instant::now() + self.shared.config.client.request_timeout;
        loop {
            let woken = self.shared.data_wake.notified();
            {
                let mut state = self.shared.lock();
                let p = state
                    .partitions
                    .get(tp)
                    .ok_or_else(|| Error::InvalidArgument(format!("{tp} is not assigned")))?;
                if let Some(position) = p.position {
                    return Ok(position);
                }
                if p.stalled {
                    return Err(state.errors.pop_front().unwrap_or_else(|| {
                        Error::InvalidArgument(format!("{tp} has no position; seek it"))
                    }));
                }
            }
            self.shared.fetch_wake.notify_one();
            if tokio::time::timeout_at(deadline, woken).await.is_err() {
                return Err(Error::Timeout(format!("resolving the position of {tp}")));
            }
        }
    }

    /// Stops fetching and returning records of `partitions` until [`Self::resume`].
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] when one is not assigned (the others are paused).
    pub fn pause(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, true)
    }

    /// Undoes [`Self::pause`].
    ///
    /// # Errors
    /// As [`Self::pause`].
    pub fn resume(&mut self, partitions: &[TopicPartition]) -> Result<()> {
        self.set_paused(partitions, false)
    }

    fn set_paused(&mut self, partitions: &[TopicPartition], paused: bool) -> Result<()> {
        let mut result = Ok(());
        for tp in partitions {
            if let Err(err) = self.with_partition(tp, |p, _| p.paused = paused) {
                result = Err(err);
            }
        }
        self.shared.data_wake.notify_one();
        result
    }

    /// The paused partitions.
    pub fn paused(&self) -> Vec<TopicPartition> {
        self.shared
            .lock()
            .partitions
            .iter()
            .filter(|(_, p)| p.paused)
            .map(|(tp, _)| tp.clone())
            .collect()
    }

    /// Stops the background tasks; with auto-commit, commits the positions (everything
    /// returned: closing says it was processed); with `subscribe`, leaves the group so that
    /// the others rebalance at once instead of after the session timeout.
    ///
    /// # Errors
    /// The commit's or LeaveGroup's failure (both are attempted).
    pub async fn close(mut self) -> Result<()> {
        self.stop();
        let mut result = Ok(());
        if self.shared.config.group_id.is_some() && self.shared.config.enable_auto_commit {
            if let Ok(generation) = self.generation() {
                let offsets = self.shared.lock().uncommitted(Processed::AllReturned);
                result = offsets::commit(&self.shared, &generation, &offsets).await;
            }
        }
        if matches!(self.mode, Mode::Subscribed(_)) {
            let member_id = std::mem::take(&mut self.shared.lock().member_id);
            if !member_id.is_empty() {
                let left = group::leave(&self.shared, &member_id).await;
                result = result.and(left);
            }
        }
        result
    }

    fn stop(&mut self) {
        for task in [self.fetcher.take(), self.group.take()]
            .into_iter()
            .flatten()
        {
            task.abort();
        }
    }
}

impl Drop for Consumer {
    /// Stops the background tasks without leaving the group: the coordinator removes this
    /// member after its session timeout. Call [`Consumer::close`] to leave at once.
    fn drop(&mut self) {
        self.stop();
    }
}
