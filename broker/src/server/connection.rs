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

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use weir_protocol::frame::{FrameCodec, READ_CHUNK, SIZE_PREFIX_LEN};

use super::Context;
use super::admission::Unproven;
use super::dispatch::{self, Outcome};

/// Requests read but not yet answered, per connection (Kafka's default
/// `max.in.flight.requests.per.connection` is 5; this leaves room for pipelining clients).
const MAX_IN_FLIGHT: usize = 64;

/// Frames up to this size are read without taking from the request-bytes budget (a produce
/// takes its share once read): they fit in the read buffer every connection has anyway, and
/// small requests (heartbeats, metadata) keep flowing while large ones wait for budget.
const SMALL_FRAME_BYTES: usize = READ_CHUNK;

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

pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Context>,
    mut life: Lifecycle,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    let cancel = life.cancel.clone();
    let (mut rd, mut wr) = stream.into_split();
    let (queue, mut pending) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let frame_timeout = ctx.config.frame_timeout();
    let idle = ctx.config.idle_timeout();

    let mut writer = tokio::spawn(async move {
        while let Some(response) = pending.recv().await {
            match response.await {
                Ok(Outcome::Respond(bytes)) => {
                    // The idle timeout, not the frame timeout: a client that reads only when
                    // its application polls (kafka-python) may leave a large fetch response
                    // unread for a while without being broken.
                    match tokio::time::timeout(idle, wr.write_all(&bytes)).await {
                        Ok(Ok(())) => {}
                        Ok(Err(err)) => {
                            tracing::debug!(%peer, error = %err, "write failed; closing connection");
                            return;
                        }
                        Err(_elapsed) => {
                            tracing::info!(%peer, "client is not reading its responses; closing connection");
                            return;
                        }
                    }
                }
                Ok(Outcome::NoResponse) => {}
                // A handler refused the request (bad input): close, as Kafka does.
                Ok(Outcome::Close(reason)) => {
                    tracing::info!(%peer, %reason, "closing connection");
                    return;
                }
                Err(_dropped) => return,
            }
        }
        if let Err(err) = wr.shutdown().await {
            tracing::debug!(%peer, error = %err, "shutdown of the write side failed");
        }
    });

    let mut previous_turn: Option<oneshot::Receiver<()>> = None;
    let mut codec = FrameCodec::new(ctx.config.max_frame_bytes);
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // Until the first request has arrived, it must arrive by this time.
    let mut first_request_by = life
        .unproven
        .is_some()
        .then(|| after(Instant::now(), ctx.config.first_request_timeout()));
    'read: loop {
        // Set when the first byte of the next frame is in `buf`.
        let mut frame_deadline: Option<Instant> = None;
        // This frame's share of the request-bytes budget, once taken.
        let mut budget: Option<OwnedSemaphorePermit> = None;
        let frame = loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(err) => {
                    tracing::info!(%peer, error = %err, "bad frame; closing connection");
                    break 'read;
                }
            }
            let mut deadline =
                read_deadline(&mut frame_deadline, buf.is_empty(), idle, frame_timeout);
            if let Some(first) = first_request_by {
                deadline = deadline.min(first);
            }
            // The size prefix is in and was accepted by the codec: a large frame takes its
            // size from the budget before its body is buffered, and the socket is not read
            // while it waits (the frame's deadline still runs).
            let large = match budget {
                None => declared_size(&buf).filter(|&size| size > SMALL_FRAME_BYTES),
                Some(_) => None,
            };
            if let Some(size) = large {
                let wanted = u32::try_from(size)
                    .unwrap_or(u32::MAX)
                    .min(ctx.config.produce_budget());
                let acquired = tokio::select! {
                    () = cancel.cancelled() => break 'read,
                    () = queue.closed() => break 'read,
                    acquired = tokio::time::timeout_at(
                        deadline,
                        Arc::clone(&ctx.request_bytes).acquire_many_owned(wanted),
                    ) => acquired,
                };
                match acquired {
                    Ok(Ok(permit)) => budget = Some(permit),
                    Ok(Err(_closed)) => break 'read,
                    Err(_elapsed) => {
                        tracing::info!(%peer, size, "request not complete in time (waiting for request-bytes budget); closing connection");
                        break 'read;
                    }
                }
                continue;
            }
            let read = tokio::select! {
                () = cancel.cancelled() => break 'read,
                // The writer gave up (write error or a client not reading): stop reading too.
                () = queue.closed() => break 'read,
                read = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)) => read,
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => break 'read,
                Ok(Ok(_)) => {}
                Err(_elapsed) if first_request_by.is_some_and(|first| first <= Instant::now()) => {
                    tracing::info!(%peer, buffered = buf.len(), "no request within the first-request timeout; closing connection");
                    break 'read;
                }
                Err(_elapsed) if frame_deadline.is_some() => {
                    tracing::info!(%peer, buffered = buf.len(), "request not complete in time; closing connection");
                    break 'read;
                }
                Err(_elapsed) => {
                    tracing::debug!(%peer, "idle connection closed");
                    break 'read;
                }
            }
        };
        if let Some(unproven) = life.unproven.take() {
            unproven.proven();
            first_request_by = None;
        }
        // A small produce takes its share now: its payload stays in memory until appended.
        if budget.is_none() && dispatch::is_produce(&frame) {
            let bytes = u32::try_from(frame.len())
                .unwrap_or(u32::MAX)
                .min(ctx.config.produce_budget());
            budget = tokio::select! {
                () = cancel.cancelled() => break 'read,
                acquired = Arc::clone(&ctx.request_bytes).acquire_many_owned(bytes) => match acquired {
                    Ok(permit) => Some(permit),
                    Err(_closed) => break 'read,
                },
            };
        }
        let (done, response) = oneshot::channel();
        // Waits when MAX_IN_FLIGHT requests are queued: the socket is not read meanwhile.
        let sent = tokio::select! {
            () = cancel.cancelled() => break 'read,
            sent = queue.send(response) => sent,
        };
        if sent.is_err() {
            break;
        }
        let (turn_done, next_turn) = oneshot::channel();
        let turn = Turn {
            previous: previous_turn.replace(next_turn),
            done: Some(turn_done),
        };
        let (ctx, cancel) = (Arc::clone(&ctx), cancel.clone());
        life.requests.spawn(async move {
            let outcome = dispatch::handle(&ctx, frame.freeze(), turn, peer, budget, &cancel).await;
            // The writer may be gone (client disconnected); nothing to do then.
            let _unwanted = done.send(outcome);
        });
    }
    // Whatever ended the reading (the client went away, a timeout, bad input, the broker
    // stopping), requests parked on this connection answer now instead of at their deadline
    // (up to 24 days for a fetch): queued responses go out and the connection closes.
    cancel.cancel();
    drop(queue);
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

/// The payload size a complete size prefix at the start of `buf` announces.
fn declared_size(buf: &[u8]) -> Option<usize> {
    let prefix: [u8; SIZE_PREFIX_LEN] = buf.get(..SIZE_PREFIX_LEN)?.try_into().ok()?;
    usize::try_from(i32::from_be_bytes(prefix)).ok()
}

/// `now + wait`, or a century from now when that overflows: timeouts come from the command
/// line, and a huge one means "never", not an overflow panic.
fn after(now: Instant, wait: Duration) -> Instant {
    now.checked_add(wait)
        .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
}

/// When the read now starting must have completed: `idle` from now between frames; inside a
/// frame, `frame_timeout` after its first byte was seen (kept in `frame_deadline`, which the
/// caller resets for each frame). Bytes arriving inside a frame do not extend its deadline.
fn read_deadline(
    frame_deadline: &mut Option<Instant>,
    between_frames: bool,
    idle: Duration,
    frame_timeout: Duration,
) -> Instant {
    let now = Instant::now();
    if between_frames {
        return after(now, idle);
    }
    *frame_deadline.get_or_insert_with(|| after(now, frame_timeout))
}

/// A request's place in its connection's order of effects (see the module docs).
#[derive(Debug)]
pub(crate) struct Turn {
    previous: Option<oneshot::Receiver<()>>,
    done: Option<oneshot::Sender<()>>,
}

impl Turn {
    /// Waits until every earlier request on the connection has taken effect.
    pub(crate) async fn wait(&mut self) {
        if let Some(previous) = self.previous.take() {
            // An error means the earlier request's task ended without releasing (it dropped
            // its turn): it is done either way.
            let _done = previous.await;
        }
    }

    /// Lets the next request take effect. Dropping the turn does the same.
    pub(crate) fn release(&mut self) {
        if let Some(done) = self.done.take() {
            // The next request may not exist yet or be gone; either is fine.
            let _unwanted = done.send(());
        }
    }
}
