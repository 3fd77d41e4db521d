//! The client's one error type: what went wrong, whether retrying can help, and the Kafka
//! error code and cause when there is one.

use std::net::SocketAddr;

use weir_protocol::api::ApiKey;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::message::MessageError;

/// Everything a client operation can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The broker answered with a Kafka error code.
    #[error("{context}: {} ({code}){}", ErrorCode::from_code(*code).map_or("UNKNOWN", ErrorCode::name), message.as_ref().map(|m| format!(": {m}")).unwrap_or_default())]
    Kafka {
        /// The raw code (see [`Error::code`] for the typed one).
        code: i16,
        /// The broker's message, when the API carries one.
        message: Option<String>,
        /// What was being done (API and resource).
        context: String,
    },
    /// Connecting to or talking to a broker failed.
    #[error("connection to {addr} failed: {source}")]
    Io {
        /// The broker.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The connection closed while a request was in flight.
    #[error("connection to {0} closed")]
    Disconnected(SocketAddr),
    /// A message could not be encoded or decoded.
    #[error("protocol error with {addr}: {source}")]
    Protocol {
        /// The broker.
        addr: SocketAddr,
        /// The cause.
        #[source]
        source: MessageError,
    },
    /// The broker supports no version of an API that this client speaks.
    #[error("broker {addr} does not support {}", api.name())]
    UnsupportedApi {
        /// The broker.
        addr: SocketAddr,
        /// The API.
        api: ApiKey,
    },
    /// None of the bootstrap addresses could be reached.
    #[error("no broker reachable (tried {tried:?}); last error: {last}")]
    NoBroker {
        /// The addresses tried.
        tried: Vec<String>,
        /// The last failure (what a caller shows: refused, unresolvable, not Kafka...).
        #[source]
        last: Box<Error>,
    },
    /// An address did not resolve.
    #[error("cannot resolve {address}: {source}")]
    Resolve {
        /// The address as given (`host:port`).
        address: String,
        /// The resolver's answer.
        #[source]
        source: std::io::Error,
    },
    /// The peer answered the connection handshake with something that is not Kafka (an
    /// HTTP server, a TLS listener...): the address is probably the wrong port.
    #[error("the peer at {addr} does not speak the Kafka protocol ({answer})")]
    NotKafka {
        /// The peer.
        addr: SocketAddr,
        /// What it answered, in words (`it answered like HTTP: "HTTP/1.1 400 Bad Request"`).
        answer: String,
    },
    /// A topic name that Kafka's rules refuse, caught before anything was sent.
    #[error("invalid topic name {name:?}: {reason}")]
    InvalidTopicName {
        /// The name.
        name: String,
        /// The rule it breaks.
        #[source]
        reason: crate::topic_name::TopicNameError,
    },
    /// A broker that metadata names (as a partition's leader, say) is not among the brokers
    /// the last metadata listed: metadata is changing; retrying after a refresh helps.
    #[error("broker {0} is not in the cluster's metadata")]
    UnknownBroker(i32),
    /// A request to one broker failed as a whole; this is one of the partitions it carried
    /// (each partition of the request gets its own copy, sharing the cause).
    #[error("request to broker {node} failed: {source}")]
    Broker {
        /// The broker.
        node: i32,
        /// What failed.
        #[source]
        source: std::sync::Arc<Error>,
    },
    /// A topic's metadata could not be had; this is one of the partitions that needed it
    /// (each gets its own copy, sharing the cause).
    #[error("metadata for {topic}: {source}")]
    Metadata {
        /// The topic.
        topic: String,
        /// Why not.
        #[source]
        source: std::sync::Arc<Error>,
    },
    /// The operation did not finish in time.
    #[error("{0} timed out")]
    Timeout(String),
    /// The client was closed.
    #[error("the client is closed")]
    Closed,
    /// The caller asked for something invalid (names the problem).
    #[error("invalid argument: {0}")]
    InvalidArgument(String),
}

impl Error {
    /// Whether the same operation may succeed if retried (after a metadata refresh or a
    /// reconnect): network failures, timeouts and Kafka's retriable codes.
    pub fn is_retriable(&self) -> bool {
        match self {
            Self::Kafka { code, .. } => {
                ErrorCode::from_code(*code).is_some_and(ErrorCode::is_retriable)
            }
            Self::Io { .. }
            | Self::Disconnected(_)
            | Self::NoBroker { .. }
            | Self::Timeout(_)
            | Self::UnknownBroker(_) => true,
            Self::Broker { source, .. } | Self::Metadata { source, .. } => source.is_retriable(),
            Self::Protocol { .. }
            | Self::UnsupportedApi { .. }
            | Self::Resolve { .. }
            | Self::NotKafka { .. }
            | Self::InvalidTopicName { .. }
            | Self::Closed
            | Self::InvalidArgument(_) => false,
        }
    }

    /// Whether a group's coordinator moved, is not ready, or could not be reached: finding it
    /// again (FindCoordinator through any broker) and retrying may help.
    pub(crate) fn coordinator_lost(&self) -> bool {
        matches!(
            self.code(),
            Some(
                ErrorCode::NotCoordinator
                    | ErrorCode::CoordinatorNotAvailable
                    | ErrorCode::CoordinatorLoadInProgress
            )
        ) || matches!(
            self,
            Self::Disconnected(_)
                | Self::Io { .. }
                | Self::Timeout(_)
                | Self::UnknownBroker(_)
                | Self::NoBroker { .. }
        )
    }

    /// The Kafka error code, if the broker answered with one Weir knows; for a topic name
    /// refused before sending, INVALID_TOPIC_EXCEPTION, the code the broker would answer.
    pub fn code(&self) -> Option<ErrorCode> {
        match self {
            Self::Kafka { code, .. } => ErrorCode::from_code(*code),
            Self::InvalidTopicName { .. } => Some(ErrorCode::InvalidTopicException),
            Self::Broker { source, .. } | Self::Metadata { source, .. } => source.code(),
            _ => None,
        }
    }

    /// An error for a non-zero code in a response, `None` for 0.
    pub(crate) fn from_code(
        code: i16,
        message: Option<&str>,
        context: impl FnOnce() -> String,
    ) -> Option<Self> {
        (code != 0).then(|| Self::Kafka {
            code,
            message: message.map(str::to_owned),
            context: context(),
        })
    }
}

/// The client's result type.
pub type Result<T, E = Error> = std::result::Result<T, E>;
