//! One TCP connection to one broker: framing, version negotiation, pipelined requests.
//!
//! At connect the client sends ApiVersions (v3, falling back to the range in the broker's v0
//! error answer, as Kafka clients do) and from then on sends each API at the highest version
//! both sides support ([`weir_protocol::api::negotiate`]). Requests are pipelined: a writer
//! task sends frames in the order they were queued, a reader task matches each response to
//! the oldest request in flight (Kafka answers in order) and checks the correlation id. When
//! either side fails, every request in flight gets the error and the connection is dead;
//! the [`crate::cluster`] layer reconnects. A first answer whose size prefix no broker would
//! send (an HTTP server, TLS, SSH) is [`Error::NotKafka`], described from its first bytes,
//! never an allocation of the size it claims.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicI32, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use weir_protocol::api::{ApiKey, VersionRange, negotiate};
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::{decode_response, encode_request};

use crate::error::{Error, Result};

/// Largest response accepted; a broker claiming more is broken or hostile.
const MAX_RESPONSE_BYTES: usize = 256 << 20;
/// Requests queued for writing per connection before senders wait.
const QUEUE: usize = 64;

/// A request type and its response, for typed calls.
pub trait Request: Into<RequestKind> + Send + 'static {
    /// Its API.
    const KEY: ApiKey;
    /// Its response.
    type Response: Send + 'static;
    /// The response inside a decoded [`ResponseKind`].
    fn response(kind: ResponseKind) -> Option<Self::Response>;
}

macro_rules! requests {
    ($($request:ident => $variant:ident($response:ident);)*) => {$(
        impl Request for $request {
            const KEY: ApiKey = ApiKey::$variant;
            type Response = $response;
            fn response(kind: ResponseKind) -> Option<$response> {
                match kind {
                    ResponseKind::$variant(r) => Some(r),
                    _ => None,
                }
            }
        }
    )*};
}

requests! {
    ProduceRequest => Produce(ProduceResponse);
    FetchRequest => Fetch(FetchResponse);
    ListOffsetsRequest => ListOffsets(ListOffsetsResponse);
    MetadataRequest => Metadata(MetadataResponse);
    OffsetCommitRequest => OffsetCommit(OffsetCommitResponse);
    OffsetFetchRequest => OffsetFetch(OffsetFetchResponse);
    FindCoordinatorRequest => FindCoordinator(FindCoordinatorResponse);
    JoinGroupRequest => JoinGroup(JoinGroupResponse);
    HeartbeatRequest => Heartbeat(HeartbeatResponse);
    LeaveGroupRequest => LeaveGroup(LeaveGroupResponse);
    SyncGroupRequest => SyncGroup(SyncGroupResponse);
    DescribeGroupsRequest => DescribeGroups(DescribeGroupsResponse);
    ListGroupsRequest => ListGroups(ListGroupsResponse);
    CreateTopicsRequest => CreateTopics(CreateTopicsResponse);
    DeleteTopicsRequest => DeleteTopics(DeleteTopicsResponse);
    InitProducerIdRequest => InitProducerId(InitProducerIdResponse);
    DescribeConfigsRequest => DescribeConfigs(DescribeConfigsResponse);
    DeleteGroupsRequest => DeleteGroups(DeleteGroupsResponse);
    IncrementalAlterConfigsRequest => IncrementalAlterConfigs(IncrementalAlterConfigsResponse);
    CreatePartitionsRequest => CreatePartitions(CreatePartitionsResponse);
    DeleteRecordsRequest => DeleteRecords(DeleteRecordsResponse);
    OffsetDeleteRequest => OffsetDelete(OffsetDeleteResponse);
    DescribeLogDirsRequest => DescribeLogDirs(DescribeLogDirsResponse);
    DescribeClusterRequest => DescribeCluster(DescribeClusterResponse);
    DescribeProducersRequest => DescribeProducers(DescribeProducersResponse);
}

/// A request waiting for its response.
struct InFlight {
    correlation_id: i32,
    key: ApiKey,
    version: i16,
    /// `None` for requests the broker does not answer (acks=0 produce).
    reply: Option<oneshot::Sender<Result<ResponseKind>>>,
}

struct Outgoing {
    frame: BytesMut,
    in_flight: InFlight,
}

/// A live connection. Cloning is cheap; all clones share the socket.
#[derive(Clone)]
pub struct Connection {
    inner: Arc<Inner>,
}

struct Inner {
    addr: SocketAddr,
    client_id: String,
    versions: HashMap<ApiKey, VersionRange>,
    next_correlation: AtomicI32,
    queue: mpsc::Sender<Outgoing>,
    dead: Arc<AtomicBool>,
}

impl std::fmt::Debug for Connection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Connection")
            .field("addr", &self.inner.addr)
            .finish_non_exhaustive()
    }
}

impl Connection {
    /// Connects to `addr` and negotiates API versions, within `timeout`.
    ///
    /// # Errors
    /// Connection, timeout or protocol errors.
    pub async fn connect(addr: SocketAddr, client_id: &str, timeout: Duration) -> Result<Self> {
        let connecting = async {
            let stream = TcpStream::connect(addr)
                .await
                .map_err(|source| Error::Io { addr, source })?;
            if let Err(err) = stream.set_nodelay(true) {
                tracing::debug!(%addr, error = %err, "set_nodelay failed");
            }
            Self::handshake(stream, addr, client_id).await
        };
        tokio::time::timeout(timeout, connecting)
            .await
            .map_err(|_elapsed| Error::Timeout(format!("connecting to {addr}")))?
    }

    async fn handshake(mut stream: TcpStream, addr: SocketAddr, client_id: &str) -> Result<Self> {
        // One piece (over 80 lines) on purpose: the ApiVersions exchange and the start of the
        // connection's reader and writer tasks share `stream`, which the tasks take at the end.
        let mut versions = None;
        // v3 first; a broker that does not know it answers in v0 with its range.
        for version in [3, 0] {
            let request = ApiVersionsRequest::default()
                .with_client_software_name(StrBytes::from_static_str("weir-client"))
                .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
            let frame = encode_request(
                ApiKey::ApiVersions,
                version,
                0,
                Some(client_id),
                &request.into(),
            )
            .map_err(|source| Error::Protocol { addr, source })?;
            stream
                .write_all(&frame)
                .await
                .map_err(|source| Error::Io { addr, source })?;
            let body = read_handshake_frame(&mut stream, addr).await?;
            // An UNSUPPORTED_VERSION answer is always v0-encoded.
            let decoded = decode_response(ApiKey::ApiVersions, version, body.clone())
                .or_else(|_| decode_response(ApiKey::ApiVersions, 0, body))
                .map_err(|source| Error::NotKafka {
                    addr,
                    answer: format!("its answer to ApiVersions does not decode: {source}"),
                })?;
            let ResponseKind::ApiVersions(response) = decoded.1 else {
                return Err(Error::Protocol {
                    addr,
                    source: weir_protocol::message::MessageError::TooShort(0),
                });
            };
            if response.error_code == ErrorCode::UnsupportedVersion.code() && version != 0 {
                continue;
            }
            if let Some(err) = Error::from_code(response.error_code, None, || {
                format!("ApiVersions to {addr}")
            }) {
                return Err(err);
            }
            versions = Some(
                response
                    .api_keys
                    .iter()
                    .filter_map(|k| {
                        ApiKey::try_from(k.api_key)
                            .ok()
                            .map(|key| (key, VersionRange::new(k.min_version, k.max_version)))
                    })
                    .collect::<HashMap<_, _>>(),
            );
            break;
        }
        let versions = versions.ok_or(Error::UnsupportedApi {
            addr,
            api: ApiKey::ApiVersions,
        })?;
        let (read, write) = stream.into_split();
        let (queue, outgoing) = mpsc::channel(QUEUE);
        let (in_flight_tx, in_flight_rx) = mpsc::unbounded_channel();
        let dead = Arc::new(AtomicBool::new(false));
        tokio::spawn(writer(
            write,
            outgoing,
            in_flight_tx,
            addr,
            Arc::clone(&dead),
        ));
        tokio::spawn(reader(read, in_flight_rx, addr, Arc::clone(&dead)));
        Ok(Self {
            inner: Arc::new(Inner {
                addr,
                client_id: client_id.to_owned(),
                versions,
                next_correlation: AtomicI32::new(1),
                queue,
                dead,
            }),
        })
    }

    /// The broker's address.
    pub fn addr(&self) -> SocketAddr {
        self.inner.addr
    }

    /// Whether the connection has failed (requests would fail at once).
    pub fn is_dead(&self) -> bool {
        self.inner.dead.load(Ordering::Acquire)
    }

    /// The version this connection uses for `key`, if both sides support it.
    pub fn version(&self, key: ApiKey) -> Option<i16> {
        negotiate(key, *self.inner.versions.get(&key)?)
    }

    /// Sends `request` at the negotiated version and waits for its response.
    ///
    /// # Errors
    /// An unsupported API, a connection failure, or an undecodable response.
    pub async fn call<R: Request>(&self, request: R) -> Result<R::Response> {
        let version = self.version(R::KEY).ok_or(Error::UnsupportedApi {
            addr: self.inner.addr,
            api: R::KEY,
        })?;
        self.call_at(version, request).await
    }

    /// Like [`Self::call`] at an explicit version.
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn call_at<R: Request>(&self, version: i16, request: R) -> Result<R::Response> {
        self.queue_at(version, request).await?.await
    }

    /// Queues `request` at the negotiated version and returns the wait for its response.
    /// Requests queued one after another (each `queue` awaited before the next) are written
    /// in that order, which is what lets a producer pipeline a partition's batches.
    ///
    /// # Errors
    /// As [`Self::call`]; the returned future fails as [`Self::call`] does.
    pub async fn queue<R: Request>(
        &self,
        request: R,
    ) -> Result<impl Future<Output = Result<R::Response>> + Send + use<R>> {
        let version = self.version(R::KEY).ok_or(Error::UnsupportedApi {
            addr: self.inner.addr,
            api: R::KEY,
        })?;
        self.queue_at(version, request).await
    }

    async fn queue_at<R: Request>(
        &self,
        version: i16,
        request: R,
    ) -> Result<impl Future<Output = Result<R::Response>> + Send + use<R>> {
        let addr = self.inner.addr;
        let (tx, rx) = oneshot::channel();
        self.send(R::KEY, version, request.into(), Some(tx)).await?;
        Ok(async move {
            let kind = rx.await.map_err(|_closed| Error::Disconnected(addr))??;
            R::response(kind).ok_or(Error::Protocol {
                addr,
                source: weir_protocol::message::MessageError::TooShort(0),
            })
        })
    }

    /// Sends a request the broker does not answer (a produce with acks=0).
    ///
    /// # Errors
    /// As [`Self::call`].
    pub async fn send_only<R: Request>(&self, request: R) -> Result<()> {
        let version = self.version(R::KEY).ok_or(Error::UnsupportedApi {
            addr: self.inner.addr,
            api: R::KEY,
        })?;
        self.send(R::KEY, version, request.into(), None).await
    }

    async fn send(
        &self,
        key: ApiKey,
        version: i16,
        body: RequestKind,
        reply: Option<oneshot::Sender<Result<ResponseKind>>>,
    ) -> Result<()> {
        let addr = self.inner.addr;
        if self.is_dead() {
            return Err(Error::Disconnected(addr));
        }
        let correlation_id = self.inner.next_correlation.fetch_add(1, Ordering::Relaxed) & i32::MAX;
        let frame = encode_request(
            key,
            version,
            correlation_id,
            Some(&self.inner.client_id),
            &body,
        )
        .map_err(|source| Error::Protocol { addr, source })?;
        let span =
            tracing::trace_span!("request", api = key.name(), version, correlation_id, %addr);
        let _entered = span.enter();
        tracing::trace!(bytes = frame.len(), "queued");
        self.inner
            .queue
            .send(Outgoing {
                frame,
                in_flight: InFlight {
                    correlation_id,
                    key,
                    version,
                    reply,
                },
            })
            .await
            .map_err(|_closed| Error::Disconnected(addr))
    }
}

/// Largest answer to ApiVersions believed: a few hundred bytes in practice. Anything that
/// starts with printable text has a size prefix of at least 512 MiB, so an HTTP server or an
/// SSH banner is recognised before anything is allocated.
const HANDSHAKE_RESPONSE_MAX: usize = 1 << 20;
/// Bytes of a non-Kafka answer read to describe it.
const ANSWER_SHOWN: usize = 64;
/// How long to wait for those bytes.
const ANSWER_WAIT: Duration = Duration::from_millis(200);

/// The first frame of a connection (the ApiVersions answer). A size prefix no Kafka broker
/// would send means the peer speaks something else: say what it looks like.
async fn read_handshake_frame(
    stream: &mut (impl AsyncReadExt + Unpin),
    addr: SocketAddr,
) -> Result<Bytes> {
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|source| Error::Io { addr, source })?;
    let Some(size) = usize::try_from(i32::from_be_bytes(prefix))
        .ok()
        .filter(|&s| s <= HANDSHAKE_RESPONSE_MAX)
    else {
        let mut answer = prefix.to_vec();
        let mut more = [0u8; ANSWER_SHOWN];
        if let Ok(Ok(n)) = tokio::time::timeout(ANSWER_WAIT, stream.read(&mut more)).await {
            answer.extend_from_slice(&more[..n]);
        }
        return Err(Error::NotKafka {
            addr,
            answer: describe_answer(&answer),
        });
    };
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|source| Error::Io { addr, source })?;
    Ok(Bytes::from(body))
}

/// What a non-Kafka answer looks like, in words, quoting its first line when it is text.
pub(crate) fn describe_answer(answer: &[u8]) -> String {
    let first_line = || {
        let text = String::from_utf8_lossy(answer);
        let line = text.lines().next().unwrap_or_default().trim();
        line.chars().take(ANSWER_SHOWN).collect::<String>()
    };
    let printable = answer
        .iter()
        .all(|b| b.is_ascii_graphic() || b.is_ascii_whitespace());
    if answer.starts_with(b"HTTP/") {
        format!("it answered like HTTP: {:?}", first_line())
    } else if answer.starts_with(b"SSH-") {
        format!("it answered like SSH: {:?}", first_line())
    } else if matches!(answer, [0x15 | 0x16, 0x03, ..]) {
        "it answered like TLS; this client speaks plaintext only".to_owned()
    } else if printable {
        format!("it answered with text: {:?}", first_line())
    } else {
        let hex: Vec<String> = answer.iter().take(8).map(|b| format!("{b:02x}")).collect();
        format!(
            "its answer starts with bytes {}, not a Kafka response size",
            hex.join(" ")
        )
    }
}

async fn read_frame(stream: &mut (impl AsyncReadExt + Unpin), addr: SocketAddr) -> Result<Bytes> {
    let mut prefix = [0u8; 4];
    stream
        .read_exact(&mut prefix)
        .await
        .map_err(|source| Error::Io { addr, source })?;
    let size = usize::try_from(i32::from_be_bytes(prefix))
        .ok()
        .filter(|&s| s <= MAX_RESPONSE_BYTES)
        .ok_or_else(|| Error::Io {
            addr,
            source: std::io::Error::other(format!(
                "implausible response size {} (bytes {prefix:02x?})",
                i32::from_be_bytes(prefix)
            )),
        })?;
    let mut body = vec![0u8; size];
    stream
        .read_exact(&mut body)
        .await
        .map_err(|source| Error::Io { addr, source })?;
    Ok(Bytes::from(body))
}

async fn writer(
    mut write: tokio::net::tcp::OwnedWriteHalf,
    mut outgoing: mpsc::Receiver<Outgoing>,
    in_flight: mpsc::UnboundedSender<InFlight>,
    addr: SocketAddr,
    dead: Arc<AtomicBool>,
) {
    while let Some(Outgoing {
        frame,
        in_flight: request,
    }) = outgoing.recv().await
    {
        // Registered before writing, so the reader never sees a response it cannot match.
        let answered = request.reply.is_some();
        if answered && in_flight.send(request).is_err() {
            break;
        }
        if let Err(err) = write.write_all(&frame).await {
            tracing::debug!(%addr, error = %err, "write failed");
            break;
        }
    }
    dead.store(true, Ordering::Release);
}

async fn reader(
    mut read: tokio::net::tcp::OwnedReadHalf,
    mut in_flight: mpsc::UnboundedReceiver<InFlight>,
    addr: SocketAddr,
    dead: Arc<AtomicBool>,
) {
    let mut pending: VecDeque<InFlight> = VecDeque::new();
    let failure = loop {
        let frame = match read_frame(&mut read, addr).await {
            Ok(frame) => frame,
            Err(err) => break err,
        };
        // Requests registered so far; the one answered is the oldest.
        while let Ok(request) = in_flight.try_recv() {
            pending.push_back(request);
        }
        let Some(request) = pending.pop_front() else {
            break Error::Io {
                addr,
                source: std::io::Error::other("response without a request"),
            };
        };
        let result = decode_response(request.key, request.version, frame)
            .map_err(|source| Error::Protocol { addr, source })
            .and_then(|(correlation_id, body)| {
                if correlation_id == request.correlation_id {
                    Ok(body)
                } else {
                    Err(Error::Io {
                        addr,
                        source: std::io::Error::other(format!(
                            "response for correlation id {correlation_id}, expected {}",
                            request.correlation_id
                        )),
                    })
                }
            });
        let broken = result.is_err();
        if let Some(reply) = request.reply {
            let _gone = reply.send(result);
        }
        if broken {
            break Error::Disconnected(addr);
        }
    };
    dead.store(true, Ordering::Release);
    tracing::debug!(%addr, error = %failure, "connection closed");
    // Everything still in flight fails.
    in_flight.close();
    while let Ok(request) = in_flight.try_recv() {
        pending.push_back(request);
    }
    for request in pending.drain(..) {
        if let Some(reply) = request.reply {
            let _gone = reply.send(Err(Error::Disconnected(addr)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_that_are_not_kafka_are_named() {
        assert_eq!(
            describe_answer(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n"),
            "it answered like HTTP: \"HTTP/1.1 400 Bad Request\""
        );
        assert_eq!(
            describe_answer(b"SSH-2.0-OpenSSH_9.6\r\n"),
            "it answered like SSH: \"SSH-2.0-OpenSSH_9.6\""
        );
        assert_eq!(
            describe_answer(&[0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x32]),
            "it answered like TLS; this client speaks plaintext only"
        );
        assert_eq!(
            describe_answer(b"-ERR unknown command\r\n"),
            "it answered with text: \"-ERR unknown command\""
        );
        assert_eq!(
            describe_answer(&[0xff, 0xfe, 0x00, 0x01]),
            "its answer starts with bytes ff fe 00 01, not a Kafka response size"
        );
    }
}
