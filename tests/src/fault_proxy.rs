//! A fault-injecting TCP proxy for the links between cluster nodes, on loopback.
//!
//! Owns one listening socket (`127.0.0.1`, a free port) and the connections accepted on it,
//! each forwarded to one upstream address with the fault currently set: none, drop (close
//! every connection and every new one), a delay per chunk, a one-way or two-way blackhole
//! (bytes read and thrown away), or flapping between healthy and partitioned. It does not
//! parse what it forwards and knows nothing of Raft or Kafka.
//!
//! # Replaying a run
//!
//! Every random decision comes from a generator derived from the proxy's seed: connection
//! `c`'s direction `d` draws its delays from stream `2c + d`, and a flapping run its phase
//! lengths from the stream of the `k`-th [`FaultProxy::set`], the one that started it. So with the same seed and the same traffic the
//! [`FaultProxy::records`] are equal, and [`FaultProxy::report`] (the seed and every fault
//! applied, with times) is what a failing test prints.
//!
//! # Invariants
//!
//! - Network errors end the one connection they happen on, never the proxy, and never panic.
//! - Bytes going one way leave in the order they came, after their delay; none are invented.
//! - A connection that lost bytes to a blackhole is closed as soon as its link forwards again
//!   ([`FaultRecord::ClosedTorn`]): the ends never see a stream with a hole in it, only a
//!   stalled or closed one, as over a real network. A close sent into a blackhole is lost the
//!   same way and reaches the other end only as that close at heal.
//! - Bounded: at most [`CONNECTIONS_MAX`] open connections, one [`CHUNK_BYTES_MAX`] buffer per
//!   direction, at most [`LOG_EVENTS_MAX`] logged events.

mod link;
mod log;

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::io;
use std::net::SocketAddr;
use std::ops::RangeInclusive;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use tokio::runtime::Handle;
use tokio::sync::watch;
use tokio::task::AbortHandle;

pub use log::{FaultEvent, FaultRecord, LOG_EVENTS_MAX};

/// Most connections one proxy forwards at once; more are closed when accepted. Two nodes open
/// a handful, so reaching this means a connection leak worth a failing test.
pub const CONNECTIONS_MAX: usize = 1024;

/// Largest chunk read at once in one direction (one buffer per direction per connection).
pub const CHUNK_BYTES_MAX: usize = 64 * 1024;

/// Which way bytes travel through the proxy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    /// From the connecting side to the upstream (a node's requests to its peer).
    ToUpstream,
    /// From the upstream back to the connecting side (the peer's responses).
    FromUpstream,
}

/// The fault a proxy applies until the next [`FaultProxy::set`] or [`FaultProxy::heal`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Everything forwarded at once.
    Healthy,
    /// Every open connection is closed, and every new one as soon as it is accepted: the
    /// peer is unreachable (a connect succeeds, then the stream ends at once).
    Drop,
    /// Each chunk is held for a time drawn uniformly, in whole milliseconds, from the range
    /// (an empty range means its start) before it is forwarded; order is kept, so delays add
    /// up under load.
    Delay(RangeInclusive<Duration>),
    /// Bytes going this way are read and thrown away; the other way is forwarded: a one-way
    /// partition. Connections stay open.
    Blackhole(Direction),
    /// Bytes going either way are read and thrown away: a two-way partition.
    BlackholeBoth,
    /// Healthy and partitioned (as [`Fault::BlackholeBoth`]) phases in turn, starting
    /// healthy, each lasting a time drawn from its range.
    Flapping {
        healthy: RangeInclusive<Duration>,
        partitioned: RangeInclusive<Duration>,
    },
}

/// A running proxy. Dropping it closes the listener and every connection.
#[derive(Debug)]
pub struct FaultProxy {
    shared: Arc<Shared>,
    addr: SocketAddr,
    accept: AbortHandle,
}

/// What the proxy's tasks share.
#[derive(Debug)]
struct Shared {
    seed: u64,
    upstream: SocketAddr,
    /// Where the connection and flapping tasks are spawned.
    runtime: Handle,
    /// Zero of the log's times.
    started: Instant,
    /// The link's state; connections re-decide at every change (to close torn streams).
    state: watch::Sender<LinkState>,
    log: Mutex<log::FaultLog>,
    /// Open connections by number, so that [`Fault::Drop`] can close them (in order).
    open: Mutex<BTreeMap<u64, AbortHandle>>,
    /// Number of the next accepted connection.
    next_conn: AtomicU64,
    /// The task flipping the phases while [`Fault::Flapping`] is set.
    flapper: Mutex<Option<AbortHandle>>,
    /// How many times a fault was set: a flapping run started by the `k`-th draws from
    /// stream `u64::MAX - k`.
    flap_runs: AtomicU64,
}

/// The fault set and, while flapping, the current phase.
#[derive(Debug, Clone)]
struct LinkState {
    fault: Fault,
    /// Which flapping run owns `flap_partitioned` (a stopped run's last step is ignored).
    flap_run: u64,
    flap_partitioned: bool,
}

impl FaultProxy {
    /// Starts a proxy on a free port of `127.0.0.1` forwarding to `upstream`, healthy, its
    /// tasks on `runtime`, its decisions drawn from `seed`. The upstream need not be up:
    /// connections made while it is down are closed.
    ///
    /// # Errors
    /// If the listening socket cannot be set up.
    pub fn start(runtime: &Handle, upstream: SocketAddr, seed: u64) -> io::Result<Self> {
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0))?;
        listener.set_nonblocking(true)?;
        let addr = listener.local_addr()?;
        let listener = {
            let _in_runtime = runtime.enter();
            tokio::net::TcpListener::from_std(listener)?
        };
        let shared = Arc::new(Shared {
            seed,
            upstream,
            runtime: runtime.clone(),
            started: Instant::now(),
            state: watch::Sender::new(LinkState {
                fault: Fault::Healthy,
                flap_run: 0,
                flap_partitioned: false,
            }),
            log: Mutex::default(),
            open: Mutex::default(),
            next_conn: AtomicU64::new(0),
            flapper: Mutex::default(),
            flap_runs: AtomicU64::new(0),
        });
        let accept = runtime
            .spawn(link::accept_loop(Arc::clone(&shared), listener))
            .abort_handle();
        Ok(Self {
            shared,
            addr,
            accept,
        })
    }

    /// Where to connect to go through the proxy.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Where the proxy forwards to.
    pub fn upstream(&self) -> SocketAddr {
        self.shared.upstream
    }

    /// The seed every decision is drawn from.
    pub fn seed(&self) -> u64 {
        self.shared.seed
    }

    /// The fault applied now.
    pub fn fault(&self) -> Fault {
        self.shared.state.borrow().fault.clone()
    }

    /// Replaces the fault applied from now on (logged). [`Fault::Drop`] closes the open
    /// connections at once; leaving a blackhole closes those that lost bytes.
    pub fn set(&self, fault: Fault) {
        let shared = &self.shared;
        shared.record(FaultRecord::Set(fault.clone()));
        if let Some(flapper) = lock(&shared.flapper).take() {
            flapper.abort();
        }
        let run = shared.flap_runs.fetch_add(1, Ordering::Relaxed) + 1;
        shared.state.send_modify(|state| {
            state.fault = fault.clone();
            state.flap_run = run;
            state.flap_partitioned = false;
        });
        match fault {
            Fault::Drop => {
                let open = std::mem::take(&mut *lock(&shared.open));
                for (conn, task) in open {
                    task.abort();
                    shared.record(FaultRecord::Dropped { conn });
                }
            }
            Fault::Flapping {
                healthy,
                partitioned,
            } => {
                let task =
                    shared
                        .runtime
                        .spawn(link::flap(Arc::clone(shared), run, healthy, partitioned));
                *lock(&shared.flapper) = Some(task.abort_handle());
            }
            Fault::Healthy | Fault::Delay(_) | Fault::Blackhole(_) | Fault::BlackholeBoth => {}
        }
    }

    /// Back to [`Fault::Healthy`].
    pub fn heal(&self) {
        self.set(Fault::Healthy);
    }

    /// Connections accepted so far (refused ones included).
    pub fn accepted(&self) -> u64 {
        self.shared.next_conn.load(Ordering::Relaxed)
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        lock(&self.shared.open).len()
    }

    /// Every fault applied so far (up to [`LOG_EVENTS_MAX`]), with times.
    pub fn events(&self) -> Vec<FaultEvent> {
        lock(&self.shared.log).events()
    }

    /// Every fault applied so far, without times: equal for equal seeds and traffic.
    pub fn records(&self) -> Vec<FaultRecord> {
        self.events().into_iter().map(|e| e.record).collect()
    }

    /// The seed and every fault applied, one per line, for a failing test to print.
    pub fn report(&self) -> String {
        let log = lock(&self.shared.log);
        let mut out = format!(
            "fault proxy {} -> {} seed {}\n",
            self.addr, self.shared.upstream, self.shared.seed
        );
        for event in log.events() {
            // Writing to a String cannot fail.
            let _infallible = writeln!(out, "  {:>8} ms  {}", event.at.as_millis(), event.record);
        }
        if log.omitted() > 0 {
            let _infallible = writeln!(out, "  ({} more events not kept)", log.omitted());
        }
        out
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.accept.abort();
        if let Some(flapper) = lock(&self.shared.flapper).take() {
            flapper.abort();
        }
        for (_, task) in std::mem::take(&mut *lock(&self.shared.open)) {
            task.abort();
        }
    }
}

impl Shared {
    fn record(&self, record: FaultRecord) {
        let at = self.started.elapsed();
        lock(&self.log).push(at, record);
    }
}

/// A lock that survives a panicking holder: the data (a log, a table of handles) stays usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}
