//! The proxy's fault log: every fault it applied, in the order it applied them, bounded.
//!
//! Owns [`FaultRecord`] (what was done), [`FaultEvent`] (a record and when) and the bounded
//! log itself. Records carry no time, so two runs with the same seed and the same traffic give
//! equal record lists; the time is kept beside each record for the printed report only.
//!
//! # Invariants
//!
//! - At most [`LOG_EVENTS_MAX`] events are kept; later ones are counted, not stored, and the
//!   report says how many were left out.

use std::fmt;
use std::time::Duration;

use super::{Direction, Fault};

/// Most events one proxy keeps: enough for minutes of per-chunk delays between two nodes,
/// small enough that a proxy left in a fault mode cannot grow without bound.
pub const LOG_EVENTS_MAX: usize = 100_000;

/// One fault the proxy applied.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum FaultRecord {
    /// The test set this fault (`heal()` sets [`Fault::Healthy`]).
    Set(Fault),
    /// A new connection was closed as soon as it was accepted ([`Fault::Drop`]).
    Refused { conn: u64 },
    /// An open connection was closed because [`Fault::Drop`] was set.
    Dropped { conn: u64 },
    /// A chunk was held this long before it was forwarded.
    Delayed {
        conn: u64,
        direction: Direction,
        chunk: u64,
        delay_ms: u64,
    },
    /// A chunk of `bytes` was read and thrown away (a blackhole or a flapping partition).
    Discarded {
        conn: u64,
        direction: Direction,
        chunk: u64,
        bytes: usize,
    },
    /// A connection that had lost bytes was closed when its link healed: a real network never
    /// delivers a TCP stream with a hole in it, so the peers must reconnect.
    ClosedTorn { conn: u64 },
    /// A flapping link entered a phase of this length.
    FlapPhase { partitioned: bool, lasts_ms: u64 },
    /// The upstream refused or timed out, so the accepted connection was closed (the node
    /// behind the proxy is down; not a fault the proxy chose, logged to explain the closes).
    UpstreamUnreachable { conn: u64 },
}

/// A record and when it was applied, counted from the proxy's start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FaultEvent {
    /// Since the proxy started; for reading the report, not for comparing runs.
    pub at: Duration,
    /// What was done.
    pub record: FaultRecord,
}

/// The bounded list of events.
#[derive(Debug, Default)]
pub(super) struct FaultLog {
    events: Vec<FaultEvent>,
    /// Events not kept because the log was full.
    omitted: u64,
}

impl FaultLog {
    pub(super) fn push(&mut self, at: Duration, record: FaultRecord) {
        if self.events.len() < LOG_EVENTS_MAX {
            self.events.push(FaultEvent { at, record });
        } else {
            self.omitted += 1;
        }
    }

    pub(super) fn events(&self) -> Vec<FaultEvent> {
        self.events.clone()
    }

    pub(super) fn omitted(&self) -> u64 {
        self.omitted
    }
}

impl fmt::Display for FaultRecord {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Set(fault) => write!(f, "set {fault:?}"),
            Self::Refused { conn } => write!(f, "conn {conn}: refused"),
            Self::Dropped { conn } => write!(f, "conn {conn}: dropped"),
            Self::Delayed {
                conn,
                direction,
                chunk,
                delay_ms,
            } => write!(
                f,
                "conn {conn} {direction:?} chunk {chunk}: delayed {delay_ms} ms"
            ),
            Self::Discarded {
                conn,
                direction,
                chunk,
                bytes,
            } => write!(
                f,
                "conn {conn} {direction:?} chunk {chunk}: discarded {bytes} bytes"
            ),
            Self::ClosedTorn { conn } => write!(f, "conn {conn}: closed after losing bytes"),
            Self::FlapPhase {
                partitioned,
                lasts_ms,
            } => {
                let phase = if *partitioned {
                    "partitioned"
                } else {
                    "healthy"
                };
                write!(f, "flap: {phase} for {lasts_ms} ms")
            }
            Self::UpstreamUnreachable { conn } => write!(f, "conn {conn}: upstream unreachable"),
        }
    }
}
