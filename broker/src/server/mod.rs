//! The Kafka-protocol server: listener, connections, dispatch and one handler per API.
//!
//! Owns sockets and request routing. It translates between wire messages (through
//! `kafka-protocol`'s codecs and `weir-protocol`'s framing) and the topic catalog and logs; it
//! stores nothing itself, and opens nothing: the broker's assembly (`crate::broker`) opens
//! the stores, binds the listener and hands both over in a `Context`; it also runs the
//! background upkeep and closes the stores once `serve` has returned.
//!
//! # Layout
//!
//! - `serve`: the accept loop and the graceful drain of connections and requests.
//! - `admission`: the connection limits (broker-wide, per IP address) and the eviction of
//!   connections that have sent nothing when a newcomer finds the broker full.
//! - `connection/`: one client: `read` (the reader loop: framing, timeouts, the request-bytes
//!   budget, one task per request) and `write` (responses in request order); requests are
//!   handled concurrently and answered in order; parked requests end when the connection
//!   closes.
//! - `turn`: `Turn`, a request's place in its connection's order of effects.
//! - `appends`: long-polling fetches by partition, woken by appends to their partitions.
//! - `dispatch`: header decoding, version checks, routing, response encoding.
//! - `context`: the state every connection shares.
//! - `handlers/`: one module per API.
//! - `leader_epochs`: a partition's leader epoch as every API answers it, and the check of a
//!   client's `current_leader_epoch` (FENCED_LEADER_EPOCH / UNKNOWN_LEADER_EPOCH).
//!
//! Invariant: `serve` returns only once every connection is closed and every request task
//! has finished (or the grace period is over), so the stores may be closed after it.

mod admission;
mod appends;
mod cluster_view;
mod connection;
mod context;
mod dispatch;
mod handlers;
mod leader_epochs;
mod turn;

use std::sync::Arc;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use admission::Admission;

use crate::metrics::connections::Refusal;
pub(crate) use context::{Context, Parts as ContextParts, advertised_host};
pub(crate) use handlers::{committed, run_offsets_coordinator};

/// The tasks of every connection and request, and the token that cuts connections off once
/// the shutdown grace period is over.
struct Tasks {
    connections: TaskTracker,
    requests: TaskTracker,
    force: CancellationToken,
}

/// Accepts connections until `stop`, then drains them: parked requests answer at once,
/// connections get the shutdown grace period to deliver their last responses, and requests
/// still running (a produce waiting for its sync) get as long again to finish.
pub(crate) async fn serve(listener: TcpListener, ctx: Arc<Context>, stop: CancellationToken) {
    let tasks = Tasks {
        connections: TaskTracker::new(),
        requests: TaskTracker::new(),
        force: CancellationToken::new(),
    };
    accept(&listener, &ctx, &stop, &tasks).await;
    drop(listener);
    drain(&ctx, tasks).await;
}

/// The accept loop, until `stop`: admission, then one task per connection.
async fn accept(
    listener: &TcpListener,
    ctx: &Arc<Context>,
    stop: &CancellationToken,
    tasks: &Tasks,
) {
    let admission = Admission::new(
        ctx.config.max_connections,
        ctx.config.max_connections_per_ip,
        ctx.metrics.connections.evictions(),
    );
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => {
                ctx.metrics.connections.accepted();
                accepted
            }
            Err(err) => {
                // Typically EMFILE: back off briefly rather than spin.
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        // Over its address's limit: closed at once (dropping the stream), before it can
        // take a slot.
        let address = match admission.count_address(peer.ip()) {
            Ok(address) => address,
            Err(count) => {
                ctx.metrics.connections.refused(Refusal::PerIp);
                tracing::debug!(%peer, count, "too many connections from this address; closing");
                continue;
            }
        };
        // At the limit this evicts a connection that has sent nothing, or waits for a slot
        // (further clients wait in the accept queue meanwhile).
        let slot = tokio::select! {
            () = stop.cancelled() => break,
            slot = admission.slot() => match slot { Some(slot) => slot, None => break },
        };
        let cancel = stop.child_token();
        let life = connection::Lifecycle {
            unproven: Some(admission.unproven(cancel.clone())),
            cancel,
            force: tasks.force.clone(),
            requests: tasks.requests.clone(),
        };
        let ctx = Arc::clone(ctx);
        let open = ctx.metrics.connections.open();
        tasks.connections.spawn(async move {
            connection::serve(stream, peer, ctx, life).await;
            drop((slot, address, open));
        });
    }
}

/// After the accept loop: waits for connections, then for requests, each within the grace
/// period.
async fn drain(ctx: &Context, tasks: Tasks) {
    let Tasks {
        connections,
        requests,
        force,
    } = tasks;
    // Every connection's token is a child of `stop`: parked requests are answering now.
    // Connections get the grace period to deliver their last responses, then are closed.
    let grace = ctx.config.shutdown_grace();
    let started = tokio::time::Instant::now();
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!(
            open = connections.len(),
            "connections still open after the shutdown grace period; closing them"
        );
        force.cancel();
        connections.wait().await;
    }
    // Requests still running (a produce waiting for its sync) finish before the logs close;
    // none waits for a client any more.
    requests.close();
    if tokio::time::timeout(grace, requests.wait()).await.is_err() {
        tracing::warn!(
            running = requests.len(),
            "requests still running after the shutdown grace period; closing the logs anyway"
        );
    }
    tracing::info!(
        elapsed_ms = started.elapsed().as_millis(),
        "connections closed"
    );
}
