//! The writing half of a connection: responses in request order.
//!
//! Owns the socket's write half. The reader queues one receiver per request, in request
//! order; the writer awaits them one by one and writes each response as it comes, so a slow
//! request holds back the responses behind it but never their handling. Does not read, and
//! decides nothing about requests. Invariants: responses leave in request order (kafka-python
//! rejects anything else); a response not taken off the socket within `idle_timeout`, a write
//! error or a handler's `Close` ends the writer, which closes the queue and so stops the
//! reader.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::io::AsyncWriteExt;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::mpsc;

use super::Pending;
use crate::server::dispatch::Outcome;

/// Writes the responses queued in `pending` until the queue ends (then shuts the write side
/// down) or the connection must close.
pub(super) async fn write_responses(
    mut wr: OwnedWriteHalf,
    mut pending: mpsc::Receiver<Pending>,
    peer: SocketAddr,
    idle: Duration,
) {
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
}
