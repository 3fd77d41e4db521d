//! The proxy's tasks: accepting, forwarding one connection's two directions, flapping.
//!
//! Owns the per-chunk decisions (forward now, forward after a delay, discard) and the
//! generators they draw from. Errors on a socket end that connection quietly; the accept loop
//! outlives every error.

use std::ops::RangeInclusive;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use weir_client::random::{JitterSource, SplitMix64};

use super::{
    CHUNK_BYTES_MAX, CONNECTIONS_MAX, Direction, Fault, FaultRecord, LinkState, Shared, lock,
};

/// How long connecting to the upstream may take before the accepted connection is closed (a
/// stopped node's backlog accepts nothing).
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(2);

/// Pause after a failed accept (out of file descriptors), so the loop does not spin.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(10);

/// What to do with the next chunk going one way.
enum Action {
    /// Forward it, after a delay drawn from the range if there is one.
    Forward(Option<RangeInclusive<Duration>>),
    /// Read it and throw it away.
    Discard,
}

impl LinkState {
    fn action(&self, direction: Direction) -> Action {
        match &self.fault {
            // Drop: the connections are closed by `set`; any still running forward until then.
            Fault::Healthy | Fault::Drop => Action::Forward(None),
            Fault::Delay(range) => Action::Forward(Some(range.clone())),
            Fault::Blackhole(blocked) if *blocked == direction => Action::Discard,
            Fault::Blackhole(_) => Action::Forward(None),
            Fault::BlackholeBoth => Action::Discard,
            Fault::Flapping { .. } if self.flap_partitioned => Action::Discard,
            Fault::Flapping { .. } => Action::Forward(None),
        }
    }
}

impl Direction {
    fn index(self) -> u64 {
        match self {
            Self::ToUpstream => 0,
            Self::FromUpstream => 1,
        }
    }
}

/// The generator of stream `stream` of `seed`: both mixed, so neighbouring seeds and
/// neighbouring streams give unrelated sequences.
pub(super) fn stream_rng(seed: u64, stream: u64) -> SplitMix64 {
    let seed_mix = SplitMix64::new(seed).next_u64();
    let stream_mix = SplitMix64::new(stream ^ 0x5eed_5eed_5eed_5eed).next_u64();
    SplitMix64::new(seed_mix ^ stream_mix)
}

/// A duration drawn uniformly in whole milliseconds from `range` (its start if empty).
pub(super) fn draw(rng: &mut SplitMix64, range: &RangeInclusive<Duration>) -> Duration {
    let low = millis(*range.start());
    let high = millis(*range.end()).max(low);
    let span = high - low;
    let offset = if span == u64::MAX {
        rng.next_u64()
    } else {
        rng.next_below(span + 1)
    };
    Duration::from_millis(low + offset)
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

/// Accepts until the proxy is dropped (which aborts this task).
pub(super) async fn accept_loop(shared: Arc<Shared>, listener: TcpListener) {
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                eprintln!("fault proxy {}: accept: {err}", shared.upstream);
                tokio::time::sleep(ACCEPT_RETRY_DELAY).await;
                continue;
            }
        };
        let conn = shared.next_conn.fetch_add(1, Ordering::Relaxed);
        // Under the table's lock, so that `set(Fault::Drop)` either sees this connection in
        // the table or is seen here.
        let mut open = lock(&shared.open);
        if matches!(shared.state.borrow().fault, Fault::Drop) {
            drop(open);
            shared.record(FaultRecord::Refused { conn });
            continue;
        }
        if open.len() >= CONNECTIONS_MAX {
            eprintln!(
                "fault proxy {}: {CONNECTIONS_MAX} connections open, closing a new one",
                shared.upstream
            );
            continue;
        }
        let task = shared
            .runtime
            .spawn(serve(Arc::clone(&shared), conn, stream));
        open.insert(conn, task.abort_handle());
    }
}

/// How one direction ended.
enum PumpEnd {
    /// The sender closed its side; the close was passed on.
    Eof,
    /// Bytes had been discarded and the link forwards again: the connection must close.
    Torn,
    /// A socket error, or the proxy is gone.
    Failed,
}

/// Forwards one connection until both directions end, or one ends torn or failed.
async fn serve(shared: Arc<Shared>, conn: u64, client: TcpStream) {
    let upstream = match tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(shared.upstream),
    )
    .await
    {
        Ok(Ok(upstream)) => upstream,
        Ok(Err(_)) | Err(_) => {
            shared.record(FaultRecord::UpstreamUnreachable { conn });
            lock(&shared.open).remove(&conn);
            return;
        }
    };
    for stream in [&client, &upstream] {
        // Without it small frames wait for the previous one's ack; a failure only slows.
        if let Err(err) = stream.set_nodelay(true) {
            eprintln!("fault proxy: TCP_NODELAY: {err}");
        }
    }
    let (client_read, client_write) = client.into_split();
    let (upstream_read, upstream_write) = upstream.into_split();
    let to_upstream = pump(
        Arc::clone(&shared),
        conn,
        Direction::ToUpstream,
        client_read,
        upstream_write,
    );
    let from_upstream = pump(
        Arc::clone(&shared),
        conn,
        Direction::FromUpstream,
        upstream_read,
        client_write,
    );
    tokio::pin!(to_upstream, from_upstream);
    let (first, other_done) = tokio::select! {
        end = &mut to_upstream => (end, false),
        end = &mut from_upstream => (end, true),
    };
    let last = match first {
        // A half-close: the other direction may still carry bytes.
        PumpEnd::Eof if other_done => to_upstream.await,
        PumpEnd::Eof => from_upstream.await,
        // Torn or failed: the whole connection ends.
        end => end,
    };
    if matches!(last, PumpEnd::Torn) {
        shared.record(FaultRecord::ClosedTorn { conn });
    }
    lock(&shared.open).remove(&conn);
}

/// Forwards one direction chunk by chunk, applying the link's state to each chunk.
async fn pump(
    shared: Arc<Shared>,
    conn: u64,
    direction: Direction,
    mut reader: OwnedReadHalf,
    mut writer: OwnedWriteHalf,
) -> PumpEnd {
    let mut rng = stream_rng(shared.seed, conn.wrapping_mul(2) + direction.index());
    let mut state = shared.state.subscribe();
    let mut buf = vec![0_u8; CHUNK_BYTES_MAX];
    let mut torn = false;
    let mut chunk = 0_u64;
    loop {
        if torn && !matches!(state.borrow_and_update().action(direction), Action::Discard) {
            return PumpEnd::Torn;
        }
        let read = tokio::select! {
            read = reader.read(&mut buf) => read,
            changed = state.changed() => {
                if changed.is_err() {
                    return PumpEnd::Failed;
                }
                continue;
            }
        };
        let len = match read {
            Ok(0) if matches!(state.borrow_and_update().action(direction), Action::Discard) => {
                // A close sent into a partition is lost like the bytes: the other end learns
                // of it only when the link heals (the connection is then closed as torn).
                return closed_into_partition(&mut state, direction).await;
            }
            Ok(0) => {
                // The peer may already be gone; the close is passed on either way.
                return match writer.shutdown().await {
                    Ok(()) => PumpEnd::Eof,
                    Err(_) => PumpEnd::Failed,
                };
            }
            Ok(len) => len,
            Err(_) => return PumpEnd::Failed,
        };
        chunk += 1;
        let action = state.borrow_and_update().action(direction);
        match action {
            Action::Discard => {
                torn = true;
                shared.record(FaultRecord::Discarded {
                    conn,
                    direction,
                    chunk,
                    bytes: len,
                });
            }
            Action::Forward(delay) => {
                if let Some(range) = delay {
                    let wait = draw(&mut rng, &range);
                    shared.record(FaultRecord::Delayed {
                        conn,
                        direction,
                        chunk,
                        delay_ms: millis(wait),
                    });
                    tokio::time::sleep(wait).await;
                }
                if writer.write_all(&buf[..len]).await.is_err() {
                    return PumpEnd::Failed;
                }
            }
        }
    }
}

/// Waits until the link stops discarding bytes going `direction`, then reports the stream torn.
async fn closed_into_partition(
    state: &mut watch::Receiver<LinkState>,
    direction: Direction,
) -> PumpEnd {
    loop {
        if !matches!(state.borrow_and_update().action(direction), Action::Discard) {
            return PumpEnd::Torn;
        }
        if state.changed().await.is_err() {
            return PumpEnd::Failed;
        }
    }
}

/// Flips a flapping link between healthy and partitioned phases until aborted by the next
/// `set`. Run `run` draws its phase lengths from its own stream.
pub(super) async fn flap(
    shared: Arc<Shared>,
    run: u64,
    healthy: RangeInclusive<Duration>,
    partitioned: RangeInclusive<Duration>,
) {
    let mut rng = stream_rng(shared.seed, u64::MAX - run);
    let mut partitioned_now = false;
    loop {
        let lasts = draw(
            &mut rng,
            if partitioned_now {
                &partitioned
            } else {
                &healthy
            },
        );
        let mut current = false;
        shared.state.send_if_modified(|state| {
            current = state.flap_run == run;
            if current {
                state.flap_partitioned = partitioned_now;
            }
            current
        });
        if !current {
            return;
        }
        shared.record(FaultRecord::FlapPhase {
            partitioned: partitioned_now,
            lasts_ms: millis(lasts),
        });
        tokio::time::sleep(lasts).await;
        partitioned_now = !partitioned_now;
    }
}
