//! What a command can fail with, the one line printed for it, and the documented exit code
//! (docs/cli.md). Client errors are translated here so that every command says the same thing
//! about the same failure.

use weir_client::Error as ClientError;
use weir_client::protocol::error_code::ErrorCode;

/// Success; also a command whose reader closed stdout (`| head`), which is a normal way to stop.
pub(crate) const EXIT_OK: u8 = 0;
/// The broker refused (unknown topic, topic exists, group not empty...) or another failure.
pub(crate) const EXIT_FAILED: u8 = 1;
/// Bad arguments or bad input (clap also uses 2 for usage errors).
pub(crate) const EXIT_USAGE: u8 = 2;
/// No broker could be reached, or it stopped answering.
pub(crate) const EXIT_UNREACHABLE: u8 = 3;
/// Some records were not delivered.
pub(crate) const EXIT_UNDELIVERED: u8 = 4;
/// Stopped by Ctrl-C (or SIGTERM) before the work was done (128 + SIGINT, as shells do).
pub(crate) const EXIT_INTERRUPTED: u8 = 130;

/// A command's failure.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CliError {
    /// No broker answered.
    #[error(
        "cannot reach a broker at {bootstrap}: {cause} — is weir-broker running? (set --bootstrap or WEIR_BOOTSTRAP)"
    )]
    Unreachable {
        /// The addresses tried.
        bootstrap: String,
        /// Why, shortened to its cause (`connection refused`).
        cause: String,
    },
    /// Not a broker: an address that does not resolve, or a peer that does not speak Kafka.
    /// The message names which and what to check.
    #[error("{0}")]
    Network(String),
    /// The broker refused the request.
    #[error("{0}")]
    Refused(String),
    /// Bad arguments or input.
    #[error("{0}")]
    Usage(String),
    /// Some records were not delivered.
    #[error("{failed} of {total} records were not delivered: {first}")]
    Undelivered {
        /// How many failed.
        failed: u64,
        /// How many were sent.
        total: u64,
        /// The first failure's reason.
        first: String,
    },
    /// Reading input or writing output failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being read or written.
        context: String,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// Ctrl-C came before the work was done (what was done is reported on stderr).
    #[error("interrupted")]
    Interrupted,
    /// The reader of stdout went away (`| head`): the command stops quietly, with success.
    #[error("stdout was closed")]
    OutputClosed,
}

impl CliError {
    /// The process exit code.
    pub(crate) fn exit_code(&self) -> u8 {
        match self {
            Self::Unreachable { .. } | Self::Network(_) => EXIT_UNREACHABLE,
            Self::Refused(_) | Self::Io { .. } => EXIT_FAILED,
            Self::Usage(_) => EXIT_USAGE,
            Self::Undelivered { .. } => EXIT_UNDELIVERED,
            Self::Interrupted => EXIT_INTERRUPTED,
            Self::OutputClosed => EXIT_OK,
        }
    }

    /// A client error, in words that say what to do. `bootstrap` names the addresses for
    /// network failures.
    pub(crate) fn client(bootstrap: &[String], err: ClientError) -> Self {
        let bootstrap = bootstrap.join(",");
        match err {
            // The last address's failure says what is wrong.
            ClientError::NoBroker { last, .. } => Self::client(&[bootstrap], *last),
            ClientError::Io { source, .. } => Self::Unreachable {
                bootstrap,
                cause: short_cause(&source.to_string()),
            },
            ClientError::Resolve { address, source } => Self::Network(format!(
                "cannot resolve the broker address {address}: {} — check the host name \
                 (set --bootstrap or WEIR_BOOTSTRAP)",
                short_cause(&source.to_string())
            )),
            ClientError::NotKafka { .. } => Self::Network(format!(
                "{err} — is {bootstrap} the broker's Kafka listener? (set --bootstrap or \
                 WEIR_BOOTSTRAP)"
            )),
            ClientError::Disconnected(_)
            | ClientError::Timeout(_)
            | ClientError::UnknownBroker(_)
            | ClientError::Broker { .. } => Self::Unreachable {
                bootstrap,
                cause: err.to_string(),
            },
            ClientError::InvalidArgument(what) => Self::Usage(what),
            ClientError::InvalidTopicName { .. } => Self::Usage(err.to_string()),
            other => Self::Refused(refused(&other)),
        }
    }
}

/// The broker's refusal with a hint for the common cases.
fn refused(err: &ClientError) -> String {
    if let (Some(ErrorCode::UnknownTopicOrPartition), ClientError::Kafka { context, .. }) =
        (err.code(), err)
    {
        if let Some(topic) = context.strip_prefix("describing topic ") {
            return format!(
                "topic {topic} does not exist (list topics with `weir topics list`, create \
                 one with `weir topics create`)"
            );
        }
    }
    let hint = match err.code() {
        Some(ErrorCode::UnknownTopicOrPartition) => {
            " (list topics with `weir topics list`, create one with `weir topics create`)"
        }
        Some(ErrorCode::NonEmptyGroup) => {
            " (stop its members first; `weir groups describe` lists them)"
        }
        Some(ErrorCode::GroupIdNotFound) => " (list groups with `weir groups list`)",
        _ => "",
    };
    format!("{err}{hint}")
}

/// `connection to 127.0.0.1:9092 failed: Connection refused (os error 111)` →
/// `connection refused`: the cause without the address (already said) or the errno.
fn short_cause(text: &str) -> String {
    let cause = text.rsplit(": ").next().unwrap_or(text);
    let cause = cause.split(" (os error").next().unwrap_or(cause).trim();
    let mut chars = cause.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text.to_owned(),
    }
}

/// Shorthand for a command's result.
pub(crate) type CliResult<T = ()> = Result<T, CliError>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refused_connection_is_one_actionable_line() {
        let err = CliError::client(
            &["127.0.0.1:9092".to_owned()],
            ClientError::NoBroker {
                tried: vec!["127.0.0.1:9092".to_owned()],
                last: Box::new(ClientError::Io {
                    addr: "127.0.0.1:9092".parse().expect("an address"),
                    source: std::io::Error::from_raw_os_error(111),
                }),
            },
        );
        assert_eq!(
            err.to_string(),
            "cannot reach a broker at 127.0.0.1:9092: connection refused — is weir-broker \
             running? (set --bootstrap or WEIR_BOOTSTRAP)"
        );
        assert_eq!(err.exit_code(), EXIT_UNREACHABLE);
    }

    #[test]
    fn an_unknown_topic_says_how_to_find_one() {
        let err = CliError::client(
            &[],
            ClientError::Kafka {
                code: ErrorCode::UnknownTopicOrPartition.code(),
                message: None,
                context: "describing topic nope".to_owned(),
            },
        );
        assert_eq!(
            err.to_string(),
            "topic nope does not exist (list topics with `weir topics list`, create one with \
             `weir topics create`)"
        );
        assert_eq!(err.exit_code(), EXIT_FAILED);
    }
}
