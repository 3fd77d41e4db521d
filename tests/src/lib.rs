//! Shared harness for the cross-crate tests in `tests/tests/`.
//!
//! Owns four things, and nothing else:
//!
//! - [`TestBroker`]: an in-process broker on `127.0.0.1:0` with its data in a temporary
//!   directory, configurable, restartable on the same directory, stopped with
//!   [`TestBroker::shutdown`]; [`TestBroker::start_on`] builds it on an injected disk or
//!   clock ([`Seams`]).
//! - [`Client`]: one TCP connection speaking Kafka's framing. Typed requests go out at an
//!   explicit version through `weir_protocol::message::encode_request`; each response is
//!   decoded with `decode_response`, its correlation id checked, and re-encoded to check that
//!   the broker sent exactly the canonical bytes (no stray or missing byte). Raw-byte helpers
//!   send bad input and observe the connection being closed.
//! - Request builders ([`req`]) with the fields a consumer or producer really sends.
//! - Record batches: [`batch`] and [`batch_at`] build uncompressed v2 batches, [`stored`]
//!   gives the bytes a fetch must return for them.
//!
//! Its modules hold the process-level harnesses: [`process`] (one `weir-broker` child),
//! [`campaign`] and [`tmpfs`] (the crash campaign), and for the cluster [`fault_proxy`] (a
//! seeded fault-injecting TCP proxy), [`cluster_procs`] (`N` nodes, each directed link through
//! its own proxy) and [`history`] (the metadata-prefix check over the nodes' Raft status).
//! Beside them, [`fake_cluster`]: an in-process fake of a multi-broker Kafka cluster
//! (leaders, coordinator, brokers going down) for testing clients' routing.
//!
//! Every wait is bounded ([`IO_TIMEOUT`]): a broker that hangs fails the test with a message
//! instead of blocking the run.

pub mod campaign;
pub mod cluster_procs;
pub mod fake_cluster;
pub mod fault_proxy;
pub mod history;
pub mod jepsen;
pub mod process;
pub mod tmpfs;
pub mod workload;

use std::marker::PhantomData;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::Arc;
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::messages::{
    ApiVersionsRequest, ApiVersionsResponse, CreatePartitionsRequest, CreatePartitionsResponse,
    CreateTopicsRequest, CreateTopicsResponse, DeleteTopicsRequest, DeleteTopicsResponse,
    DescribeConfigsRequest, DescribeConfigsResponse, FetchRequest, FetchResponse,
    InitProducerIdRequest, InitProducerIdResponse, ListOffsetsRequest, ListOffsetsResponse,
    MetadataRequest, MetadataResponse, ProduceRequest, ProduceResponse, RequestKind, ResponseKind,
};
use kafka_protocol::messages::{
    DeleteGroupsRequest, DeleteGroupsResponse, DescribeGroupsRequest, DescribeGroupsResponse,
    FindCoordinatorRequest, FindCoordinatorResponse, HeartbeatRequest, HeartbeatResponse,
    JoinGroupRequest, JoinGroupResponse, LeaveGroupRequest, LeaveGroupResponse, ListGroupsRequest,
    ListGroupsResponse, OffsetCommitRequest, OffsetCommitResponse, OffsetFetchRequest,
    OffsetFetchResponse, SyncGroupRequest, SyncGroupResponse,
};
use kafka_protocol::messages::{
    DeleteRecordsRequest, DeleteRecordsResponse, DescribeClusterRequest, DescribeClusterResponse,
    DescribeLogDirsRequest, DescribeLogDirsResponse, DescribeProducersRequest,
    DescribeProducersResponse, OffsetDeleteRequest, OffsetDeleteResponse,
};
use kafka_protocol::messages::{ElectLeadersRequest, ElectLeadersResponse};
use kafka_protocol::messages::{OffsetForLeaderEpochRequest, OffsetForLeaderEpochResponse};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use weir_broker::clock::Clock;
use weir_broker::storage::Disk;
use weir_broker::{Broker, BrokerConfig, RunningBroker};
use weir_protocol::api::{ApiKey, supported_range};
use weir_protocol::message::{decode_response, encode_request, encode_response};
use weir_protocol::record_batch::{
    BatchBuilder, RecordInput, set_base_offset, set_partition_leader_epoch,
};

/// Longest any single step (connect, read a response, start or stop the broker) may take
/// before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(5);

/// Timestamp of the first record of [`batch`]; record `i` has `BASE_TIMESTAMP + i`.
pub const BASE_TIMESTAMP: i64 = 1_700_000_000_000;

/// Awaits `fut`, failing the test with `what` if it takes longer than [`IO_TIMEOUT`].
pub async fn within<F: Future>(what: &str, fut: F) -> F::Output {
    match tokio::time::timeout(IO_TIMEOUT, fut).await {
        Ok(out) => out,
        Err(_elapsed) => panic!("timed out after {IO_TIMEOUT:?}: {what}"),
    }
}

/// Every version of `key` the broker is meant to serve (from the shared API table).
///
/// # Panics
/// If `key` is not in the table.
pub fn versions(key: ApiKey) -> RangeInclusive<i16> {
    let range = supported_range(key).unwrap_or_else(|| panic!("{key} is not in SUPPORTED_APIS"));
    range.min..=range.max
}

/// An in-process broker with its data directory.
#[derive(Debug)]
pub struct TestBroker {
    dir: tempfile::TempDir,
    config: BrokerConfig,
    /// Given to the broker's builder at every (re)start.
    seams: Seams,
    running: Option<RunningBroker>,
}

/// What a test injects into an in-process broker through [`Broker::builder`]; each `None`
/// is the real one. Kept across [`TestBroker::restart`].
#[derive(Debug, Default, Clone)]
pub struct Seams {
    /// File allocation, writes and syncs of every store (`FaultyDisk` injects failures).
    pub disk: Option<Arc<dyn Disk>>,
    /// Wall-clock time (`ManualClock` moves only when told).
    pub clock: Option<Arc<dyn Clock>>,
}

impl TestBroker {
    /// A broker with [`BrokerConfig::for_tests`] settings.
    pub async fn start() -> Self {
        Self::start_with(|_| {}).await
    }

    /// A broker with [`BrokerConfig::for_tests`] settings changed by `configure` (the data
    /// directory and listen address are set by the harness).
    ///
    /// # Panics
    /// If the broker does not start.
    pub async fn start_with(configure: impl FnOnce(&mut BrokerConfig)) -> Self {
        Self::start_on(Seams::default(), configure).await
    }

    /// As [`Self::start_with`], on the disk and clock given in `seams`.
    ///
    /// # Panics
    /// If the broker does not start.
    pub async fn start_on(seams: Seams, configure: impl FnOnce(&mut BrokerConfig)) -> Self {
        let dir = tempfile::tempdir().expect("create temporary data directory");
        let mut config = BrokerConfig::for_tests(dir.path());
        configure(&mut config);
        let mut broker = Self {
            dir,
            config,
            seams,
            running: None,
        };
        broker.boot().await;
        broker
    }

    async fn boot(&mut self) {
        let mut broker = Broker::builder(self.config.clone());
        if let Some(disk) = &self.seams.disk {
            broker = broker.disk(Arc::clone(disk));
        }
        if let Some(clock) = &self.seams.clock {
            broker = broker.clock(Arc::clone(clock));
        }
        let running = within("broker start", broker.start())
            .await
            .expect("broker starts");
        self.running = Some(running);
    }

    /// The address clients connect to.
    ///
    /// # Panics
    /// If the broker is stopped.
    pub fn addr(&self) -> SocketAddr {
        self.running.as_ref().expect("broker is running").addr()
    }

    /// The HTTP listener's address, when the configuration asked for one.
    ///
    /// # Panics
    /// If the broker is stopped.
    pub fn http_addr(&self) -> Option<SocketAddr> {
        self.running
            .as_ref()
            .expect("broker is running")
            .http_addr()
    }

    /// The configuration the broker runs with.
    pub fn config(&self) -> &BrokerConfig {
        &self.config
    }

    /// A new connection to the broker.
    pub async fn client(&self) -> Client {
        Client::connect(self.addr()).await
    }

    /// Stops the broker cleanly and starts it again on the same data directory (on a new
    /// port when the configured one is 0).
    pub async fn restart(&mut self) {
        self.stop().await;
        self.boot().await;
    }

    /// Stops the broker cleanly, failing the test if the shutdown reports an error.
    pub async fn shutdown(mut self) {
        self.stop().await;
    }

    /// Stops the broker and returns what the shutdown reported (a log that failed while
    /// serving is reported here).
    ///
    /// # Panics
    /// If the broker is stopped already, or does not stop within [`IO_TIMEOUT`].
    pub async fn try_shutdown(mut self) -> Result<(), weir_broker::BrokerError> {
        let running = self.running.take().expect("broker is running");
        within("broker shutdown", running.shutdown()).await
    }

    async fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            within("broker shutdown", running.shutdown())
                .await
                .expect("broker stops cleanly");
        }
    }

    /// The running broker's counters (parked fetches and their wake-ups).
    ///
    /// # Panics
    /// If the broker is stopped.
    pub fn stats(&self) -> weir_broker::ServerStats {
        self.running.as_ref().expect("broker is running").stats()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &std::path::Path {
        self.dir.path()
    }
}

/// A request type the harness can send, with its API key and response type.
pub trait Api: Into<RequestKind> {
    /// The API key.
    const KEY: ApiKey;
    /// The response message.
    type Response;
    /// The typed response inside a decoded [`ResponseKind`], if it is this API's.
    fn unwrap(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! apis {
    ($($request:ident => $variant:ident($response:ident);)*) => {$(
        impl Api for $request {
            const KEY: ApiKey = ApiKey::$variant;
            type Response = $response;
            fn unwrap(kind: ResponseKind) -> Option<$response> {
                match kind {
                    ResponseKind::$variant(response) => Some(response),
                    _ => None,
                }
            }
        }
    )*};
}

apis! {
    ApiVersionsRequest => ApiVersions(ApiVersionsResponse);
    MetadataRequest => Metadata(MetadataResponse);
    CreateTopicsRequest => CreateTopics(CreateTopicsResponse);
    DeleteTopicsRequest => DeleteTopics(DeleteTopicsResponse);
    ProduceRequest => Produce(ProduceResponse);
    FetchRequest => Fetch(FetchResponse);
    ListOffsetsRequest => ListOffsets(ListOffsetsResponse);
    InitProducerIdRequest => InitProducerId(InitProducerIdResponse);
    DescribeConfigsRequest => DescribeConfigs(DescribeConfigsResponse);
    FindCoordinatorRequest => FindCoordinator(FindCoordinatorResponse);
    JoinGroupRequest => JoinGroup(JoinGroupResponse);
    SyncGroupRequest => SyncGroup(SyncGroupResponse);
    HeartbeatRequest => Heartbeat(HeartbeatResponse);
    LeaveGroupRequest => LeaveGroup(LeaveGroupResponse);
    OffsetCommitRequest => OffsetCommit(OffsetCommitResponse);
    OffsetFetchRequest => OffsetFetch(OffsetFetchResponse);
    DescribeGroupsRequest => DescribeGroups(DescribeGroupsResponse);
    ListGroupsRequest => ListGroups(ListGroupsResponse);
    DeleteGroupsRequest => DeleteGroups(DeleteGroupsResponse);
    CreatePartitionsRequest => CreatePartitions(CreatePartitionsResponse);
    AlterConfigsRequest => AlterConfigs(AlterConfigsResponse);
    IncrementalAlterConfigsRequest => IncrementalAlterConfigs(IncrementalAlterConfigsResponse);
    DeleteRecordsRequest => DeleteRecords(DeleteRecordsResponse);
    OffsetDeleteRequest => OffsetDelete(OffsetDeleteResponse);
    DescribeLogDirsRequest => DescribeLogDirs(DescribeLogDirsResponse);
    DescribeClusterRequest => DescribeCluster(DescribeClusterResponse);
    DescribeProducersRequest => DescribeProducers(DescribeProducersResponse);
    OffsetForLeaderEpochRequest => OffsetForLeaderEpoch(OffsetForLeaderEpochResponse);
    ElectLeadersRequest => ElectLeaders(ElectLeadersResponse);
}

/// A request that was sent and whose response is still to be read with [`Client::recv`].
#[derive(Debug)]
#[must_use = "read the response with Client::recv"]
pub struct Sent<R> {
    /// The request's correlation id.
    pub correlation_id: i32,
    /// The version it was sent at.
    pub version: i16,
    request: PhantomData<fn() -> R>,
}

/// One connection to the broker.
#[derive(Debug)]
pub struct Client {
    stream: TcpStream,
    next_correlation_id: i32,
}

impl Client {
    /// Connects to `addr`.
    ///
    /// # Panics
    /// If the connection fails or takes longer than [`IO_TIMEOUT`].
    pub async fn connect(addr: SocketAddr) -> Self {
        let stream = within("connect", TcpStream::connect(addr))
            .await
            .expect("connect to the broker");
        stream.set_nodelay(true).expect("set TCP_NODELAY");
        Self {
            stream,
            next_correlation_id: 1,
        }
    }

    /// Sends `request` at `version` and returns its response.
    pub async fn call<R: Api>(&mut self, version: i16, request: R) -> R::Response {
        let sent = self.send(version, request).await;
        self.recv(sent).await
    }

    /// Sends `request` at `version` without reading anything (pipelining, acks=0).
    ///
    /// # Panics
    /// If the request cannot be encoded at `version` or the write fails.
    pub async fn send<R: Api>(&mut self, version: i16, request: R) -> Sent<R> {
        let correlation_id = self.next_correlation_id;
        self.next_correlation_id += 1;
        let frame = encode_request(
            R::KEY,
            version,
            correlation_id,
            Some("weir-tests"),
            &request.into(),
        )
        .unwrap_or_else(|err| panic!("encode {} v{version}: {err}", R::KEY));
        self.send_raw(&frame).await;
        Sent {
            correlation_id,
            version,
            request: PhantomData,
        }
    }

    /// Reads the next response, which must be the one to `sent`, and decodes it.
    ///
    /// # Panics
    /// If the connection closes, nothing arrives within [`IO_TIMEOUT`], the correlation id is
    /// another request's, or the bytes are not exactly the canonical encoding of the response.
    pub async fn recv<R: Api>(&mut self, sent: Sent<R>) -> R::Response {
        let (key, version) = (R::KEY, sent.version);
        let frame = self
            .recv_frame()
            .await
            .unwrap_or_else(|| panic!("connection closed instead of answering {key} v{version}"));
        let (correlation_id, kind) = decode_response(key, version, frame.clone())
            .unwrap_or_else(|err| panic!("decode {key} v{version} response: {err}"));
        assert_eq!(
            correlation_id, sent.correlation_id,
            "{key} v{version}: response to another request (responses out of order?)"
        );
        let canonical = encode_response(key, version, correlation_id, &kind)
            .unwrap_or_else(|err| panic!("re-encode {key} v{version} response: {err}"));
        assert_eq!(
            &canonical[4..],
            &frame[..],
            "{key} v{version}: response bytes are not the canonical encoding of what they decode to"
        );
        R::unwrap(kind).unwrap_or_else(|| panic!("{key} v{version}: decoded as another API"))
    }

    /// Writes `bytes` as they are.
    ///
    /// # Panics
    /// If the write fails or takes longer than [`IO_TIMEOUT`].
    pub async fn send_raw(&mut self, bytes: &[u8]) {
        within("write", self.stream.write_all(bytes))
            .await
            .expect("write to the broker");
    }

    /// Closes the write half: the broker reads end of stream.
    pub async fn shutdown_write(&mut self) {
        within("shutdown write", self.stream.shutdown())
            .await
            .expect("shut down the write half");
    }

    /// Reads one size-prefixed frame and returns it without the prefix, or `None` if the
    /// broker closed the connection before sending anything.
    ///
    /// # Panics
    /// If nothing arrives within [`IO_TIMEOUT`], the connection ends inside a frame, or the
    /// size prefix is negative.
    pub async fn recv_frame(&mut self) -> Option<Bytes> {
        within("read a response", async {
            let mut prefix = [0u8; 4];
            match self.stream.read_exact(&mut prefix).await {
                Ok(_) => {}
                Err(err) if is_closed(&err) => return None,
                Err(err) => panic!("read size prefix: {err}"),
            }
            let size = usize::try_from(i32::from_be_bytes(prefix))
                .expect("response size prefix is not negative");
            let mut frame = vec![0u8; size];
            self.stream
                .read_exact(&mut frame)
                .await
                .expect("read a whole response frame");
            Some(Bytes::from(frame))
        })
        .await
    }

    /// Waits up to `wait` for a response; `true` if bytes arrived, `false` if none did
    /// (the connection is then still open and nothing has been consumed).
    ///
    /// # Panics
    /// If the connection is closed or fails.
    pub async fn has_response_within(&mut self, wait: Duration) -> bool {
        let mut one = [0u8; 1];
        match tokio::time::timeout(wait, self.stream.peek(&mut one)).await {
            Err(_elapsed) => false,
            Ok(Ok(0)) => panic!("connection closed while waiting for a response"),
            Ok(Ok(_)) => true,
            Ok(Err(err)) => panic!("peek: {err}"),
        }
    }

    /// Asserts that the broker closes the connection without sending another byte.
    ///
    /// # Panics
    /// If bytes arrive, or the connection is still open after [`IO_TIMEOUT`].
    pub async fn expect_closed(&mut self) {
        let mut buf = [0u8; 256];
        let read = within(
            "the broker to close the connection",
            self.stream.read(&mut buf),
        )
        .await;
        match read {
            Ok(0) => {}
            Ok(n) => panic!(
                "expected the connection to close, got {n} bytes: {:?}",
                &buf[..n]
            ),
            Err(err) if is_closed(&err) => {}
            Err(err) => panic!("expected the connection to close, got {err}"),
        }
    }
}

/// Shortcuts for setting up state, at each API's highest version; each fails the test unless
/// the broker answers without error.
impl Client {
    /// Creates topic `name` with `partitions` partitions.
    pub async fn create_topic(&mut self, name: &str, partitions: i32) {
        let v = *versions(ApiKey::CreateTopics).end();
        let response = self.call(v, req::create_topic(name, partitions)).await;
        assert_eq!(response.topics.len(), 1);
        assert_eq!(
            response.topics[0].error_code, 0,
            "create {name}: {response:?}"
        );
    }

    /// Produces `records` with acks=all and returns the base offset the broker assigned.
    pub async fn produce_ok(&mut self, name: &str, partition: i32, records: Bytes) -> i64 {
        let v = *versions(ApiKey::Produce).end();
        let response = self
            .call(v, req::produce(name, partition, records, -1))
            .await;
        let p = &response.responses[0].partition_responses[0];
        assert_eq!(p.error_code, 0, "produce to {name}/{partition}: {p:?}");
        p.base_offset
    }

    /// The offset ListOffsets gives for `timestamp` (-1 latest, -2 earliest).
    pub async fn list_offset(&mut self, name: &str, partition: i32, timestamp: i64) -> i64 {
        let v = *versions(ApiKey::ListOffsets).end();
        let response = self
            .call(v, req::list_offsets(name, partition, timestamp))
            .await;
        let p = &response.topics[0].partitions[0];
        assert_eq!(p.error_code, 0, "list offsets of {name}/{partition}: {p:?}");
        p.offset
    }

    /// The record bytes a fetch from `offset` returns at once (no waiting).
    pub async fn fetch_now(&mut self, name: &str, partition: i32, offset: i64) -> Bytes {
        let v = *versions(ApiKey::Fetch).end();
        let response = self
            .call(v, req::fetch(name, partition, offset, 0, 0))
            .await;
        let p = &response.responses[0].partitions[0];
        assert_eq!(
            p.error_code, 0,
            "fetch {name}/{partition} at {offset}: {p:?}"
        );
        p.records.clone().expect("records are never null")
    }
}

fn is_closed(err: &std::io::Error) -> bool {
    use std::io::ErrorKind;
    matches!(
        err.kind(),
        ErrorKind::UnexpectedEof | ErrorKind::ConnectionReset | ErrorKind::BrokenPipe
    )
}

/// A request frame, size prefix included, with a v1 request header (null client id) and
/// `body` as given: for API keys, versions and bodies the typed encoder refuses.
pub fn raw_request(api_key: i16, version: i16, correlation_id: i32, body: &[u8]) -> Vec<u8> {
    let mut frame = BytesMut::new();
    let size = i32::try_from(10 + body.len()).expect("small test frame");
    frame.put_i32(size);
    frame.put_i16(api_key);
    frame.put_i16(version);
    frame.put_i32(correlation_id);
    frame.put_i16(-1);
    frame.put_slice(body);
    frame.to_vec()
}

/// An uncompressed v2 batch of `count` records: key `k<i>`, value `v<i>`, timestamp
/// [`BASE_TIMESTAMP`]` + i`, no producer id.
pub fn batch(count: usize) -> Bytes {
    let timestamps: Vec<i64> = (0..count)
        .map(|i| BASE_TIMESTAMP + i64::try_from(i).expect("small count"))
        .collect();
    batch_at(&timestamps, 2)
}

/// An uncompressed v2 batch with one record per timestamp; record `i` has key `k<i>` and a
/// value of `value_len` bytes (at least 2) starting with `v<i>`.
///
/// # Panics
/// If `timestamps` is empty.
pub fn batch_at(timestamps: &[i64], value_len: usize) -> Bytes {
    let mut builder = BatchBuilder::new();
    for (i, &timestamp) in timestamps.iter().enumerate() {
        let key = format!("k{i}");
        let mut value = format!("v{i}").into_bytes();
        value.resize(value_len.max(value.len()), b'.');
        builder.push(RecordInput {
            key: Some(key.as_bytes()),
            value: Some(&value),
            headers: &[],
            timestamp,
        });
    }
    builder.build().expect("a batch with at least one record")
}

/// What a fetch returns for `batch` appended at `base_offset`: the same bytes with the two
/// broker-assigned fields (base offset, partition leader epoch 0) written in.
pub fn stored(batch: &[u8], base_offset: i64) -> Vec<u8> {
    let mut out = batch.to_vec();
    set_base_offset(&mut out, base_offset);
    set_partition_leader_epoch(&mut out, 0);
    out
}

/// Builders for the requests the tests send, with the fields real clients set.
/// Log options of 64 KiB segments writing through `disk`, for catalog tests that run out of
/// space part-way through creating or growing a topic.
pub fn faulty_log_options(
    disk: &Arc<weir_broker::log::FaultyDisk>,
) -> weir_broker::log::LogOptions {
    let mut options = weir_broker::log::LogOptions::new(
        weir_broker::log::LogConfig {
            segment_bytes: 64 << 10,
            ..weir_broker::log::LogConfig::default()
        },
        weir_broker::log::Flusher::new(1),
    );
    options.disk = Arc::clone(disk) as _;
    options
}

pub mod req {
    use bytes::Bytes;
    use kafka_protocol::messages::create_topics_request::CreatableTopic;
    use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
    use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
    use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
    use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
    use kafka_protocol::messages::{
        BrokerId, CreateTopicsRequest, DeleteTopicsRequest, FetchRequest, ListOffsetsRequest,
        MetadataRequest, ProduceRequest, TopicName,
    };
    use kafka_protocol::protocol::StrBytes;

    /// A topic name on the wire.
    pub fn topic(name: &str) -> TopicName {
        TopicName(StrBytes::from_string(name.to_owned()))
    }

    /// Metadata for `topics` (`None`: all topics, as an empty list for v0 and null for v1+),
    /// asking for auto-creation where the version can say so.
    pub fn metadata(version: i16, topics: Option<&[&str]>) -> MetadataRequest {
        let topics = match topics {
            None if version == 0 => Some(Vec::new()),
            None => None,
            Some(names) => Some(
                names
                    .iter()
                    .map(|&n| MetadataRequestTopic::default().with_name(Some(topic(n))))
                    .collect(),
            ),
        };
        MetadataRequest::default().with_topics(topics)
    }

    /// CreateTopics for one topic with `partitions` partitions and replication factor 1.
    pub fn create_topic(name: &str, partitions: i32) -> CreateTopicsRequest {
        create_topics(&[(name, partitions, 1)])
    }

    /// CreateTopics for `(name, partitions, replication factor)` triples.
    pub fn create_topics(topics: &[(&str, i32, i16)]) -> CreateTopicsRequest {
        CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(
                topics
                    .iter()
                    .map(|&(name, partitions, rf)| {
                        CreatableTopic::default()
                            .with_name(topic(name))
                            .with_num_partitions(partitions)
                            .with_replication_factor(rf)
                    })
                    .collect(),
            )
    }

    /// DeleteTopics for `names` (by name: versions 1-5).
    pub fn delete_topics(names: &[&str]) -> DeleteTopicsRequest {
        DeleteTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topic_names(names.iter().map(|&n| topic(n)).collect())
    }

    /// Produce `records` to one partition with `acks`.
    pub fn produce(name: &str, partition: i32, records: Bytes, acks: i16) -> ProduceRequest {
        produce_many(&[(name, partition, records)], acks)
    }

    /// Produce to several partitions in one request: `(topic, partition, records)`, grouped
    /// by topic in order of first appearance.
    pub fn produce_many(parts: &[(&str, i32, Bytes)], acks: i16) -> ProduceRequest {
        let mut topics: Vec<TopicProduceData> = Vec::new();
        for (name, partition, records) in parts {
            let data = PartitionProduceData::default()
                .with_index(*partition)
                .with_records(Some(records.clone()));
            match topics.iter_mut().find(|t| t.name.0.as_str() == *name) {
                Some(t) => t.partition_data.push(data),
                None => topics.push(
                    TopicProduceData::default()
                        .with_name(topic(name))
                        .with_partition_data(vec![data]),
                ),
            }
        }
        ProduceRequest::default()
            .with_acks(acks)
            .with_timeout_ms(5_000)
            .with_topic_data(topics)
    }

    /// Fetch one partition from `offset` (1 MiB per partition, 50 MiB in all).
    pub fn fetch(
        name: &str,
        partition: i32,
        offset: i64,
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> FetchRequest {
        fetch_many(&[(name, partition, offset)], max_wait_ms, min_bytes)
    }

    /// Fetch several `(topic, partition, offset)`s, grouped by topic in order of appearance.
    pub fn fetch_many(
        parts: &[(&str, i32, i64)],
        max_wait_ms: i32,
        min_bytes: i32,
    ) -> FetchRequest {
        let mut topics: Vec<FetchTopic> = Vec::new();
        for &(name, partition, offset) in parts {
            let p = FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20);
            match topics.iter_mut().find(|t| t.topic.0.as_str() == name) {
                Some(t) => t.partitions.push(p),
                None => topics.push(
                    FetchTopic::default()
                        .with_topic(topic(name))
                        .with_partitions(vec![p]),
                ),
            }
        }
        FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(min_bytes)
            .with_max_bytes(50 << 20)
            .with_topics(topics)
    }

    /// ListOffsets for one partition at `timestamp` (-2 earliest, -1 latest), as a consumer.
    pub fn list_offsets(name: &str, partition: i32, timestamp: i64) -> ListOffsetsRequest {
        ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic(name))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(partition)
                            .with_timestamp(timestamp),
                    ]),
            ])
    }
}
