//! Who gets a connection: the broker-wide limit, the per-address limit, and room for
//! newcomers when the broker is full.
//!
//! Owns the connection slots (`--max-connections`), the count of connections per IP address
//! (`--max-connections-per-ip`) and the list of *unproven* connections: accepted, but their
//! first request has not arrived yet. It does not read sockets; the accept loop and the
//! connections call it.
//!
//! Invariants:
//!
//! - A connection holds one slot and one count of its address from admission until its task
//!   ends ([`Slot`], [`AddressCount`] release on drop), so the counts never drift.
//! - At the limit, a newcomer evicts the oldest unproven connection (cancels it) and takes its
//!   slot once it is gone; only when every connection has proven itself does a newcomer wait.
//!   So silent connections can delay other clients by at most `--first-request-timeout-ms`,
//!   and not even that while any of them is still unproven.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use prometheus_client::metrics::counter::Counter;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// A connection slot, held until the connection's task ends.
pub(crate) type Slot = OwnedSemaphorePermit;

#[derive(Debug, Default)]
struct State {
    per_ip: HashMap<IpAddr, usize>,
    /// Connections whose first request has not arrived, oldest first, with the token that
    /// closes each.
    unproven: BTreeMap<u64, CancellationToken>,
    next_id: u64,
}

/// The broker's admission policy.
#[derive(Debug)]
pub(crate) struct Admission {
    slots: Arc<Semaphore>,
    max_per_ip: usize,
    state: Mutex<State>,
    /// Connections evicted to make room (a metric).
    evictions: Counter,
}

/// One connection counted against its address; uncounted on drop.
#[derive(Debug)]
pub(crate) struct AddressCount {
    admission: Arc<Admission>,
    ip: IpAddr,
}

/// A connection that has not delivered its first request yet; it may be evicted until this is
/// dropped ([`Unproven::proven`]).
#[derive(Debug)]
pub(crate) struct Unproven {
    admission: Arc<Admission>,
    id: u64,
}

impl Admission {
    /// `evictions` counts the connections [`Self::slot`] closes (a metric).
    pub(crate) fn new(max_connections: usize, max_per_ip: usize, evictions: Counter) -> Arc<Self> {
        Arc::new(Self {
            evictions,
            slots: Arc::new(Semaphore::new(
                max_connections.clamp(1, Semaphore::MAX_PERMITS),
            )),
            max_per_ip: max_per_ip.max(1),
            state: Mutex::new(State::default()),
        })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Counts a connection from `ip`, or refuses it with the count the address already has.
    pub(crate) fn count_address(self: &Arc<Self>, ip: IpAddr) -> Result<AddressCount, usize> {
        let mut state = self.lock();
        let count = state.per_ip.entry(ip).or_insert(0);
        if *count >= self.max_per_ip {
            return Err(*count);
        }
        *count += 1;
        Ok(AddressCount {
            admission: Arc::clone(self),
            ip,
        })
    }

    /// A connection slot: at once if one is free; otherwise the oldest unproven connection is
    /// evicted and its slot taken when it has closed; otherwise the next slot to free up.
    pub(crate) async fn slot(&self) -> Option<Slot> {
        if let Ok(slot) = Arc::clone(&self.slots).try_acquire_owned() {
            return Some(slot);
        }
        let evicted = self.lock().unproven.pop_first();
        if let Some((_, close)) = evicted {
            tracing::info!(
                "connection limit reached: closing the oldest connection that has sent no request"
            );
            self.evictions.inc();
            close.cancel();
        }
        // None only if the semaphore were closed, which it never is.
        Arc::clone(&self.slots).acquire_owned().await.ok()
    }

    /// Registers a new connection as unproven: `close` is cancelled if it is evicted.
    pub(crate) fn unproven(self: &Arc<Self>, close: CancellationToken) -> Unproven {
        let mut state = self.lock();
        state.next_id += 1;
        let id = state.next_id;
        state.unproven.insert(id, close);
        Unproven {
            admission: Arc::clone(self),
            id,
        }
    }
}

impl Unproven {
    /// The first request has arrived: the connection can no longer be evicted.
    pub(crate) fn proven(self) {}
}

impl Drop for Unproven {
    fn drop(&mut self) {
        self.admission.lock().unproven.remove(&self.id);
    }
}

impl Drop for AddressCount {
    fn drop(&mut self) {
        let mut state = self.admission.lock();
        if let Some(count) = state.per_ip.get_mut(&self.ip) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                state.per_ip.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn addresses_are_counted_and_uncounted() {
        let admission = Admission::new(10, 2, Counter::default());
        let (a, b) = (IpAddr::from([10, 0, 0, 1]), IpAddr::from([10, 0, 0, 2]));
        let first = admission.count_address(a).unwrap();
        let _second = admission.count_address(a).unwrap();
        assert_eq!(admission.count_address(a).unwrap_err(), 2);
        let _other = admission.count_address(b).unwrap();
        drop(first);
        let _again = admission.count_address(a).unwrap();
        drop(_again);
        drop(_second);
        drop(_other);
        assert!(admission.lock().per_ip.is_empty());
    }

    #[tokio::test]
    async fn at_the_limit_the_oldest_unproven_connection_is_evicted() {
        let admission = Admission::new(3, 100, Counter::default());
        let tokens: Vec<CancellationToken> = (0..3).map(|_| CancellationToken::new()).collect();
        let mut held = Vec::new();
        for token in &tokens {
            held.push(Some((
                admission.slot().await.unwrap(),
                admission.unproven(token.clone()),
            )));
        }
        // The first connection proves itself: the second is now the oldest unproven one.
        let (slot0, unproven0) = held[0].take().unwrap();
        unproven0.proven();
        let newcomer = {
            let admission = Arc::clone(&admission);
            tokio::spawn(async move { admission.slot().await.unwrap() })
        };
        tokio::time::timeout(Duration::from_secs(5), tokens[1].cancelled())
            .await
            .expect("the oldest unproven connection is evicted");
        assert!(!tokens[0].is_cancelled() && !tokens[2].is_cancelled());
        // The evicted connection closes (drops its slot): the newcomer gets it.
        drop(held[1].take());
        let _slot = tokio::time::timeout(Duration::from_secs(5), newcomer)
            .await
            .expect("the newcomer gets the evicted connection's slot")
            .unwrap();
        drop(slot0);
    }
}
