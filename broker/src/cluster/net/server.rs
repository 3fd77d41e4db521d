//! The cluster listener (`--cluster-listen`): accepts other nodes' connections and answers
//! their requests through a [`Handler`].
//!
//! Bounded like the client port: at most [`MAX_CONNECTIONS`] connections, frames of at most
//! [`super::wire::MAX_FRAME`] (refused before allocation by the codec), and at most
//! [`MAX_IN_FLIGHT`] requests being handled per connection (the connection stops reading
//! while it is full). Requests are handled concurrently, so a slow proposal never holds up
//! the Raft heartbeats behind it.

use std::sync::Arc;

use futures_util::future::BoxFuture;
use futures_util::{SinkExt, StreamExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Semaphore, mpsc};
use tokio_util::codec::Framed;
use tokio_util::sync::CancellationToken;

use super::wire::{self, Body, Envelope, Request, Response, VERSION};

/// Connections accepted at once.
pub const MAX_CONNECTIONS: usize = 64;
/// Requests handled at once per connection.
pub const MAX_IN_FLIGHT: usize = 64;

/// Answers requests from other nodes.
pub type Handler = Arc<dyn Fn(Request) -> BoxFuture<'static, Response> + Send + Sync>;

/// Accepts connections until `stop` is cancelled.
pub async fn serve(listener: TcpListener, handler: Handler, stop: CancellationToken) {
    let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        let (stream, peer) = match accepted {
            Ok(pair) => pair,
            Err(err) => {
                tracing::warn!(error = %err, "cluster listener: accept failed");
                tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = Arc::clone(&connections).try_acquire_owned() else {
            tracing::warn!(%peer, "cluster listener: too many connections, closing a new one");
            continue;
        };
        let (handler, stop) = (Arc::clone(&handler), stop.clone());
        tokio::spawn(async move {
            connection(stream, handler, stop).await;
            drop(permit);
        });
    }
}

async fn connection(stream: TcpStream, handler: Handler, stop: CancellationToken) {
    if stream.set_nodelay(true).is_err() {
        return;
    }
    let (mut sink, mut frames) = Framed::new(stream, wire::codec()).split();
    let (answers, mut queue) = mpsc::channel::<Envelope>(MAX_IN_FLIGHT);
    let writer = tokio::spawn(async move {
        while let Some(envelope) = queue.recv().await {
            let Ok(bytes) = wire::encode(&envelope) else {
                continue;
            };
            if sink.send(bytes::Bytes::from(bytes)).await.is_err() {
                break;
            }
        }
    });
    let in_flight = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    loop {
        let frame = tokio::select! {
            () = stop.cancelled() => break,
            frame = frames.next() => frame,
        };
        let Some(Ok(frame)) = frame else { break };
        let envelope = match wire::decode(&frame) {
            Ok(envelope) => envelope,
            Err(err) => {
                tracing::warn!(error = %err, "cluster listener: undecodable frame, closing");
                break;
            }
        };
        let Body::Request(request) = envelope.body else {
            continue;
        };
        let Ok(permit) = Arc::clone(&in_flight).acquire_owned().await else {
            break;
        };
        let (handler, answers) = (Arc::clone(&handler), answers.clone());
        tokio::spawn(async move {
            let response = if envelope.version > VERSION {
                Response::Unsupported { version: VERSION }
            } else {
                handler(request).await
            };
            let _gone = answers
                .send(Envelope {
                    version: VERSION,
                    id: envelope.id,
                    body: Body::Response(response),
                })
                .await;
            drop(permit);
        });
    }
    drop(answers);
    let _ended = writer.await;
}
