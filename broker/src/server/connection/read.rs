//! The reading half of a connection: frames in, one task per request.
//!
//! Owns the socket's read half, the frame buffer, the read deadlines (idle, frame, first
//! request) and the request-bytes budget a frame takes before its body is buffered. For each
//! whole frame it queues a place for the response (waiting while [`MAX_IN_FLIGHT`] are
//! queued: the socket is not read meanwhile), gives the request its [`Turn`] and spawns its
//! task on the connection's request tracker. Does not write (the writer does) and does not
//! decode requests beyond the size prefix and the API key (dispatch does).
//!
//! Invariants: the buffer grows with the bytes received, never with a size a frame claims;
//! a frame's budget is held from before its body is read until its request is handled (or
//! decoded, for other than produce); when reading ends, for whatever reason, the connection's
//! cancellation token fires before the response queue is closed.
//!
//! [`MAX_IN_FLIGHT`]: super::MAX_IN_FLIGHT

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::{OwnedSemaphorePermit, mpsc, oneshot};
use tokio::time::Instant;
use tokio_util::codec::Decoder;
use weir_protocol::frame::{FrameCodec, READ_CHUNK, SIZE_PREFIX_LEN};

use super::{Lifecycle, Pending};
use crate::server::Context;
use crate::server::dispatch;
use crate::server::turn::Turn;

/// Frames up to this size are read without taking from the request-bytes budget (a produce
/// takes its share once read): they fit in the read buffer every connection has anyway, and
/// small requests (heartbeats, metadata) keep flowing while large ones wait for budget.
const SMALL_FRAME_BYTES: usize = READ_CHUNK;

/// A whole frame and the share of the request-bytes budget it holds, if any.
type Frame = (BytesMut, Option<OwnedSemaphorePermit>);

/// The reading half of one connection.
pub(super) struct Reader {
    rd: OwnedReadHalf,
    peer: SocketAddr,
    ctx: Arc<Context>,
    /// Where each request's response receiver goes, in request order (the writer's input).
    queue: mpsc::Sender<Pending>,
    life: Lifecycle,
    codec: FrameCodec,
    /// Bytes received and not yet decoded into a frame.
    buf: BytesMut,
    /// Until the first request has arrived, it must arrive by this time.
    first_request_by: Option<Instant>,
    idle: Duration,
    frame_timeout: Duration,
}

impl Reader {
    pub(super) fn new(
        rd: OwnedReadHalf,
        peer: SocketAddr,
        ctx: Arc<Context>,
        queue: mpsc::Sender<Pending>,
        life: Lifecycle,
    ) -> Self {
        let first_request_by = life
            .unproven
            .is_some()
            .then(|| after(Instant::now(), ctx.config.first_request_timeout()));
        Self {
            rd,
            peer,
            codec: FrameCodec::new(ctx.config.max_frame_bytes),
            buf: BytesMut::with_capacity(READ_CHUNK),
            idle: ctx.config.idle_timeout(),
            frame_timeout: ctx.config.frame_timeout(),
            first_request_by,
            ctx,
            queue,
            life,
        }
    }

    /// Reads requests and spawns a task for each until reading ends; then fires the
    /// connection's cancellation token and closes the response queue. Hands back the
    /// lifecycle, which the connection holds until its writer is done.
    pub(super) async fn run(mut self) -> Lifecycle {
        let cancel = self.life.cancel.clone();
        let mut previous_turn: Option<oneshot::Receiver<()>> = None;
        while let Some((frame, budget)) = self.next_frame().await {
            if let Some(unproven) = self.life.unproven.take() {
                unproven.proven();
                self.first_request_by = None;
            }
            // A small produce takes its share now: its payload stays in memory until appended.
            let budget = match budget {
                Some(budget) => Some(budget),
                None if dispatch::is_produce(&frame) => {
                    let bytes = u32::try_from(frame.len())
                        .unwrap_or(u32::MAX)
                        .min(self.ctx.config.produce_budget());
                    tokio::select! {
                        () = cancel.cancelled() => break,
                        acquired = Arc::clone(&self.ctx.request_bytes).acquire_many_owned(bytes) => match acquired {
                            Ok(permit) => Some(permit),
                            Err(_closed) => break,
                        },
                    }
                }
                None => None,
            };
            let (done, response) = oneshot::channel();
            // Waits when MAX_IN_FLIGHT requests are queued: the socket is not read meanwhile.
            let sent = tokio::select! {
                () = cancel.cancelled() => break,
                sent = self.queue.send(response) => sent,
            };
            if sent.is_err() {
                break;
            }
            let (turn, next_turn) = Turn::next(previous_turn.take());
            previous_turn = Some(next_turn);
            let (ctx, cancel, peer) = (Arc::clone(&self.ctx), cancel.clone(), self.peer);
            self.life.requests.spawn(async move {
                let outcome =
                    dispatch::handle(&ctx, frame.freeze(), turn, peer, budget, &cancel).await;
                // The writer may be gone (client disconnected); nothing to do then.
                let _unwanted = done.send(outcome);
            });
        }
        // Whatever ended the reading (the client went away, a timeout, bad input, the broker
        // stopping), requests parked on this connection answer now instead of at their
        // deadline (up to 24 days for a fetch): queued responses go out and the connection
        // closes.
        cancel.cancel();
        let Self { queue, life, .. } = self;
        drop(queue);
        life
    }

    /// The next whole frame, or `None` when reading must end (the client went away, a
    /// timeout, bad input, the connection cancelled, the writer gone). Logs why.
    async fn next_frame(&mut self) -> Option<Frame> {
        // Set when the first byte of the next frame is in `buf`.
        let mut frame_deadline: Option<Instant> = None;
        // This frame's share of the request-bytes budget, once taken.
        let mut budget: Option<OwnedSemaphorePermit> = None;
        let peer = self.peer;
        loop {
            match self.codec.decode(&mut self.buf) {
                Ok(Some(frame)) => return Some((frame, budget)),
                Ok(None) => {}
                Err(err) => {
                    tracing::info!(%peer, error = %err, "bad frame; closing connection");
                    return None;
                }
            }
            let mut deadline = read_deadline(
                &mut frame_deadline,
                self.buf.is_empty(),
                self.idle,
                self.frame_timeout,
            );
            if let Some(first) = self.first_request_by {
                deadline = deadline.min(first);
            }
            // The size prefix is in and was accepted by the codec: a large frame takes its
            // size from the budget before its body is buffered, and the socket is not read
            // while it waits (the frame's deadline still runs).
            let large = match budget {
                None => declared_size(&self.buf).filter(|&size| size > SMALL_FRAME_BYTES),
                Some(_) => None,
            };
            if let Some(size) = large {
                budget = Some(self.take_budget(size, deadline).await?);
                continue;
            }
            let read = tokio::select! {
                () = self.life.cancel.cancelled() => return None,
                // The writer gave up (write error or a client not reading): stop reading too.
                () = self.queue.closed() => return None,
                read = tokio::time::timeout_at(deadline, self.rd.read_buf(&mut self.buf)) => read,
            };
            match read {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_elapsed)
                    if self
                        .first_request_by
                        .is_some_and(|first| first <= Instant::now()) =>
                {
                    tracing::info!(%peer, buffered = self.buf.len(), "no request within the first-request timeout; closing connection");
                    return None;
                }
                Err(_elapsed) if frame_deadline.is_some() => {
                    tracing::info!(%peer, buffered = self.buf.len(), "request not complete in time; closing connection");
                    return None;
                }
                Err(_elapsed) => {
                    tracing::debug!(%peer, "idle connection closed");
                    return None;
                }
            }
        }
    }

    /// A large frame's share of the request-bytes budget (its declared `size`, at most the
    /// whole budget), taken by `deadline`; `None` when reading must end meanwhile.
    async fn take_budget(&self, size: usize, deadline: Instant) -> Option<OwnedSemaphorePermit> {
        let wanted = u32::try_from(size)
            .unwrap_or(u32::MAX)
            .min(self.ctx.config.produce_budget());
        let acquired = tokio::select! {
            () = self.life.cancel.cancelled() => return None,
            () = self.queue.closed() => return None,
            acquired = tokio::time::timeout_at(
                deadline,
                Arc::clone(&self.ctx.request_bytes).acquire_many_owned(wanted),
            ) => acquired,
        };
        match acquired {
            Ok(Ok(permit)) => Some(permit),
            Ok(Err(_closed)) => None,
            Err(_elapsed) => {
                let peer = self.peer;
                tracing::info!(%peer, size, "request not complete in time (waiting for request-bytes budget); closing connection");
                None
            }
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
