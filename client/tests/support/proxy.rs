//! A TCP proxy between the client and an in-process broker that injects network faults: it
//! can hold all traffic (a stalled broker), lose the next response, and in chaos mode cut
//! connections in the middle of requests and responses (closing or resetting them), delay
//! chunks and split them into small writes, each decision drawn from a seeded generator.
//!
//! Tests make the broker advertise `127.0.0.2` (same port) and listen there, so metadata sends
//! the client back through the proxy rather than around it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
// The client's own seedable generator: good enough to pick faults.
use weir_client::random::{JitterSource, SplitMix64};

/// Random network faults, drawn per chunk of bytes forwarded.
#[derive(Debug)]
pub(crate) struct Chaos {
    rng: SplitMix64,
    /// Chance in 1000 that a chunk is cut part-way and the connection dropped.
    pub(crate) cut_per_mille: u64,
    /// Chance in 1000 that a chunk waits before it is forwarded, up to `max_delay`.
    pub(crate) delay_per_mille: u64,
    pub(crate) max_delay: Duration,
}

impl Chaos {
    pub(crate) fn new(
        seed: u64,
        cut_per_mille: u64,
        delay_per_mille: u64,
        max_delay: Duration,
    ) -> Self {
        Self {
            rng: SplitMix64::new(seed),
            cut_per_mille,
            delay_per_mille,
            max_delay,
        }
    }

    fn below(&mut self, n: u64) -> u64 {
        self.rng.next_u64() % n.max(1)
    }
}

/// What to do with one chunk.
enum Fate {
    Forward {
        delay: Duration,
        pieces: usize,
    },
    /// Forward this many bytes, then drop the connection.
    Cut {
        keep: usize,
    },
}

/// The proxy's switches and counters.
#[derive(Debug, Default)]
pub(crate) struct Faults {
    /// Bytes are held, in both directions, while set.
    pub(crate) stalled: AtomicBool,
    /// The next chunk from the broker is dropped and the connection closed (once).
    pub(crate) cut_next_response: AtomicBool,
    /// Connections accepted.
    pub(crate) accepted: AtomicUsize,
    /// Connections cut by chaos.
    pub(crate) cuts: AtomicUsize,
    /// Chunks delayed by chaos.
    pub(crate) delays: AtomicUsize,
    /// Random faults, when set.
    pub(crate) chaos: Mutex<Option<Chaos>>,
}

impl Faults {
    fn fate(&self, len: usize) -> Fate {
        let mut chaos = self.chaos.lock().unwrap();
        let Some(chaos) = chaos.as_mut() else {
            return Fate::Forward {
                delay: Duration::ZERO,
                pieces: 1,
            };
        };
        if chaos.below(1000) < chaos.cut_per_mille {
            self.cuts.fetch_add(1, Ordering::SeqCst);
            let keep = usize::try_from(chaos.below(len as u64)).unwrap_or(0);
            return Fate::Cut { keep };
        }
        let delay = if chaos.below(1000) < chaos.delay_per_mille {
            self.delays.fetch_add(1, Ordering::SeqCst);
            let max = u64::try_from(chaos.max_delay.as_micros()).unwrap_or(u64::MAX);
            Duration::from_micros(chaos.below(max))
        } else {
            Duration::ZERO
        };
        let pieces = 1 + usize::try_from(chaos.below(4)).unwrap_or(0);
        Fate::Forward { delay, pieces }
    }

    /// Whether a new connection ends with a reset rather than an orderly close when cut.
    fn resets(&self) -> bool {
        let mut chaos = self.chaos.lock().unwrap();
        chaos.as_mut().is_some_and(|chaos| chaos.below(2) == 0)
    }
}

/// Listens on `listen` and forwards every connection to `upstream`, through `Faults`.
pub(crate) async fn proxy(listen: SocketAddr, upstream: SocketAddr) -> Arc<Faults> {
    let listener = TcpListener::bind(listen).await.expect("proxy binds");
    let faults = Arc::new(Faults::default());
    let shared = Arc::clone(&faults);
    tokio::spawn(async move {
        while let Ok((client, _)) = listener.accept().await {
            shared.accepted.fetch_add(1, Ordering::SeqCst);
            let Ok(server) = TcpStream::connect(upstream).await else {
                continue;
            };
            if shared.resets() {
                // SO_LINGER 0: closing sends a reset, not a FIN.
                let _ignored = client.set_zero_linger();
                let _ignored = server.set_zero_linger();
            }
            let faults = Arc::clone(&shared);
            tokio::spawn(async move {
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::select! {
                    () = pump(client_read, server_write, &faults, false) => {}
                    () = pump(server_read, client_write, &faults, true) => {}
                }
                // Both halves drop here: the other direction is closed too.
            });
        }
    });
    faults
}

async fn pump(mut from: OwnedReadHalf, mut to: OwnedWriteHalf, faults: &Faults, responses: bool) {
    let mut buf = vec![0u8; 64 << 10];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        while faults.stalled.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        if responses && faults.cut_next_response.swap(false, Ordering::SeqCst) {
            return;
        }
        let fate = faults.fate(n);
        match fate {
            Fate::Cut { keep } => {
                let _partial = to.write_all(&buf[..keep]).await;
                return;
            }
            Fate::Forward { delay, pieces } => {
                if !delay.is_zero() {
                    tokio::time::sleep(delay).await;
                }
                // Several small writes: the receiver sees frames arrive in pieces.
                let step = n.div_ceil(pieces);
                for piece in buf[..n].chunks(step) {
                    if to.write_all(piece).await.is_err() {
                        return;
                    }
                }
            }
        }
    }
}

/// The fault seed: `WEIR_FAULT_SEED` replays a run, else one is drawn and printed.
pub(crate) fn fault_seed() -> u64 {
    let seed = std::env::var("WEIR_FAULT_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| d.as_secs() ^ u64::from(d.subsec_nanos()) << 32)
        });
    eprintln!("fault seed {seed} (WEIR_FAULT_SEED={seed} replays it)");
    seed
}
