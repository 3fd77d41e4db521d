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
//! The queue is bounded, and produce requests also
//! take permits from the broker-wide produce-bytes semaphore: when either is full the reader
//! stops reading the socket, which is the broker's backpressure.
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
//! - the buffer grows with the bytes received, not with the size a frame claims
//!   (`FrameCodec`), and a claimed size above `max_frame_bytes` closes the connection from the
//!   4-byte prefix alone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use tokio_util::sync::CancellationToken;
use weir_protocol::frame::FrameCodec;

use super::Context;
use super::dispatch::{self, Outcome};

/// Requests read but not yet answered, per connection (Kafka's default
/// `max.in.flight.requests.per.connection` is 5; this leaves room for pipelining clients).
const MAX_IN_FLIGHT: usize = 64;

/// A response to write, or nothing (acks=0 produce), or the end of the connection.
type Pending = oneshot::Receiver<Outcome>;

pub(crate) async fn serve(
    stream: TcpStream,
    peer: SocketAddr,
    ctx: Arc<Context>,
    stop: CancellationToken,
) {
    if let Err(err) = stream.set_nodelay(true) {
        tracing::debug!(%peer, error = %err, "set_nodelay failed");
    }
    let (mut rd, mut wr) = stream.into_split();
    let (queue, mut pending) = mpsc::channel::<Pending>(MAX_IN_FLIGHT);
    let frame_timeout = ctx.config.frame_timeout();
    let idle = ctx.config.idle_timeout();

    let writer = tokio::spawn(async move {
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
    let mut buf = BytesMut::with_capacity(64 * 1024);
    'read: loop {
        // Set when the first byte of the next frame is in `buf`.
        let mut frame_deadline: Option<Instant> = None;
        let frame = loop {
            match codec.decode(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(err) => {
                    tracing::info!(%peer, error = %err, "bad frame; closing connection");
                    break 'read;
                }
            }
            let deadline = read_deadline(&mut frame_deadline, buf.is_empty(), idle, frame_timeout);
            let read = tokio::select! {
                () = stop.cancelled() => break 'read,
                // The writer gave up (write error or a client not reading): stop reading too.
                () = queue.closed() => break 'read,
                read = tokio::time::timeout_at(deadline, rd.read_buf(&mut buf)) => read,
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => break 'read,
                Ok(Ok(_)) => {}
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
        // Produce payloads count against the broker-wide budget until handled.
        let permit = if dispatch::is_produce(&frame) {
            let bytes = u32::try_from(frame.len())
                .unwrap_or(u32::MAX)
                .min(ctx.config.produce_budget());
            match Arc::clone(&ctx.produce_bytes)
                .acquire_many_owned(bytes)
                .await
            {
                Ok(permit) => Some(permit),
                Err(_closed) => break,
            }
        } else {
            None
        };
        let (done, response) = oneshot::channel();
        // Waits when MAX_IN_FLIGHT requests are queued: the socket is not read meanwhile.
        if queue.send(response).await.is_err() {
            break;
        }
        let (turn_done, next_turn) = oneshot::channel();
        let turn = Turn {
            previous: previous_turn.replace(next_turn),
            done: Some(turn_done),
        };
        let ctx = Arc::clone(&ctx);
        tokio::spawn(async move {
            let outcome = dispatch::handle(&ctx, frame.freeze(), turn, peer).await;
            drop(permit);
            // The writer may be gone (client disconnected); nothing to do then.
            let _unwanted = done.send(outcome);
        });
    }
    // Let the queued requests finish and their responses go out (graceful shutdown).
    drop(queue);
    if writer.await.is_err() {
        tracing::error!(%peer, "connection writer panicked");
    }
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
    // Timeouts come from the command line: a huge one means "never", not an overflow panic.
    let after = |wait: Duration| {
        now.checked_add(wait)
            .unwrap_or_else(|| now + Duration::from_secs(100 * 365 * 86_400))
    };
    if between_frames {
        return after(idle);
    }
    *frame_deadline.get_or_insert_with(|| after(frame_timeout))
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
