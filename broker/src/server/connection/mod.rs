//! One client connection: frames in, responses out, in request order.
//!
//! Kafka clients pipeline requests. Each request is handled in its own task so a long-polling
//! fetch or an `acks=all` wait does not hold up the requests behind it, but:
//!
//! - requests take effect in request order: each task waits for its [`Turn`] before acting
//!   (so pipelined produces append in order, and a fetch or a produce sees a topic created by
//!   an earlier request), and hands the turn on as soon as its effect is done (a produce after
//!   appending, before waiting for the sync; a fetch before long-polling);
//! - responses are written strictly in request order (kafka-python rejects anything else):
//!   the reader queues a receiver per request, the writer awaits them one by one.
//!
//! The queue is bounded, and request bytes are taken from the broker-wide budget
//! (`Context::request_bytes`, `--max-produce-bytes-in-flight`, Kafka's
//! `queued.max.request.bytes`): a frame larger than 64 KiB takes its size as soon as its size
//! prefix is read, before its body is buffered, and gives it back once decoded; a produce holds
//! its share until handled. When the queue is full or the budget spent, the reader stops
//! reading the socket, which is the broker's backpressure; so the memory held by frames still
//! arriving is bounded broker-wide, however many clients send large frames at once.
//!
//! A client can hold no more than its own connection, however it misbehaves:
//!
//! - between requests, the connection is closed after `idle_timeout` of silence;
//! - once a request's first byte has arrived, the whole frame must arrive within
//!   `frame_timeout` (a client that sends a header and stops, or trickles a byte a second,
//!   would otherwise reset the idle timer forever);
//! - a response the client does not take off the socket within `idle_timeout` closes the
//!   connection (a client that never reads would otherwise park the writer, and the
//!   responses queued behind it, forever);
//! - a new connection must deliver its first request within `--first-request-timeout-ms`,
//!   and until it has, it may be evicted to admit a newcomer when the broker is full
//!   (`admission`);
//! - when reading ends for any reason (the client went away, a timeout, eviction, bad input,
//!   the broker stopping), the connection's cancellation token fires: requests parked on it
//!   (long-polling fetches, JoinGroup, SyncGroup) answer at once instead of at their deadline,
//!   and at shutdown the writer is cut off after the grace period;
//! - the buffer grows with the bytes received, not with the size a frame claims
//!   (`FrameCodec`), and a claimed size above `max_frame_bytes` closes the connection from the
//!   4-byte prefix alone.
//!
//! # Layout
//!
//! - `read`: the reader loop: frames, timeouts, the request-bytes budget, one task per
//!   request, each given its [`Turn`] and a place in the response queue.
//! - `write`: the writer: responses in request order, each within `idle_timeout`.
//!
//! Invariant: the reader never waits for the writer except through the bounded queue, and
//! when either side ends, the other follows (the writer gone closes the queue the reader
//! watches; the reader gone fires the cancellation token and closes the queue).

mod read;
mod write;

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::Context;
use super::admission::Unproven;
use super::dispatch::Outcome;

/// Requests read but not yet answered, per connection (Kafka's default
/// `max.in.flight.requests.per.connection` is 5; this leaves room for pipelining clients).
const MAX_IN_FLIGHT: usize = 64;

/// A response to write, or nothing (acks=0 produce), or the end of the connection.
type Pending = oneshot::Receiver<Outcome>;

/// How a connection is told to stop, and what it holds until it does.
#[derive(Debug)]
pub(crate) struct Lifecycle {
    /// Fires when the connection must stop waiting: the broker is stopping (a child of its
    /// stop token), the connection was evicted for a newcomer, or the connection is closing
    /// (the client went away, a timeout, bad input). Requests parked on it answer at once.
    pub(crate) cancel: CancellationToken,
    /// Fires when the shutdown grace period is over: the connection is closed whatever its
    /// writer is doing.
    pub(crate) force: CancellationToken,
    /// Present until the first request has arrived (then the connection cannot be evicted).
    pub(crate) unproven: Option<Unproven>,
    /// Where request tasks run, so the shutdown can wait for them before closing the logs.
    pub(crate) requests: TaskTracker,
}

/// Serves one client until it goes away, misbehaves, or the broker stops: the writer in a
/// task of its own, the reader here; then waits for the writer (cut off when `force` fires).
pub(crate) async fn serve(stream: TcpStream, peer: SocketAddr, ctx: Arc<Context>, life: Lifecycle) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    let (rd, wr) = stream.into_split();
    let (queue, pending) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let mut writer = tokio::spawn(write::write_responses(
        wr,
        pending,
        peer,
        ctx.config.idle_timeout(),
    ));
    let life = read::Reader::new(rd, peer, ctx, queue, life).run().await;
    tokio::select! {
        joined = &mut writer => {
            if joined.is_err() {
                tracing::error!(%peer, "connection writer panicked");
            }
        }
        () = life.force.cancelled() => {
            writer.abort();
            tracing::info!(%peer, "shutdown grace period over; closing connection");
        }
    }
}
