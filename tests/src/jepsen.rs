//! A Jepsen-style history of a Kafka workload and its checker, apart from any I/O.
//!
//! Owns the history's operations ([`Op`]: a send and its outcome, a read of one record at one
//! offset, an observed committed offset), its JSON-lines form (one [`Op`] per line, what the
//! Python workload writes and [`read_history`] parses, bounded), and [`check`] (in
//! `check.rs`), which turns a history into a [`Report`] of anomalies. It does not run
//! clients, inject faults or decide which broker to read: the workloads record, this module
//! judges.
//!
//! # The history's rules
//!
//! - A value is sent once, by one producer, to one partition of the workload's one topic.
//!   Values are opaque strings; nothing is parsed out of them.
//! - A send's `seq` is its place in its producer's send order (the order the producer was
//!   handed the values); the operations themselves may be recorded in any order (a delivery
//!   callback fires when it fires).
//! - A send's outcome is Jepsen's: `ok` (acknowledged, at `offset`), `fail` (definitely not
//!   written: the client never accepted it, or the broker refused it before any attempt could
//!   have been written) or `info` (indeterminate: it may or may not have been written).
//! - Reads are in the order they were returned per reader. The final reads (after healing)
//!   are marked `final`; when a history has any, an acknowledged value is lost unless one of
//!   them returned it; without any, unless any read did. Commits are in the order they
//!   were acknowledged or read back; a read-back names the commits it overlapped
//!   ([`Commit::overlaps`]), which it is not compared with.
//!
//! # Invariants of [`check`]
//!
//! Pure and deterministic: the same history gives the same report, anomalies sorted (lost
//! and phantoms by partition, offset and value; inconsistent offsets by offset; duplicates
//! by value; reorders by producer and partition; commits in history order). An `info` send
//! is never a loss, whether it was read or not.

mod check;

use std::io::{self, BufRead};

use serde::{Deserialize, Serialize};

pub use check::{
    CommitBackwards, Duplicate, InconsistentOffset, Lost, Phantom, PhantomKind, Reorder, Report,
    check,
};

/// A send's outcome.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    /// Acknowledged; the send's `offset` is where the broker said it is.
    Ok,
    /// Definitely not written.
    Fail,
    /// Unknown: a timeout, a lost answer, a refusal after a retry.
    Info,
}

/// A value handed to a producer, and what became of it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Send {
    pub producer: String,
    /// The send's place in its producer's order, from 0.
    pub seq: u64,
    pub partition: i32,
    pub value: String,
    pub outcome: Outcome,
    /// The acknowledged offset (`ok` only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub offset: Option<i64>,
}

/// One record returned to a reader.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Read {
    /// Who read it: a broker read directly (`node-2`) or a client (`group`, `assign`).
    pub reader: String,
    pub partition: i32,
    pub offset: i64,
    pub value: String,
    /// Part of the final reads, made after every fault was healed: an acknowledged value
    /// missing from them is lost even if another reader saw it earlier.
    #[serde(default, rename = "final", skip_serializing_if = "is_false")]
    pub final_read: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A group's committed offset for a partition, as observed (an acknowledged OffsetCommit or
/// an OffsetFetch answer).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Commit {
    pub group: String,
    pub partition: i32,
    pub offset: i64,
    /// Who saw it (a member whose commit was acknowledged, an OffsetFetch), for the report.
    #[serde(default)]
    pub by: String,
    /// How many of the commits recorded just before this one were acknowledged while this
    /// observation's request was under way: they may have landed after it, so it is not
    /// compared with them (0 for an observation made by the member that commits).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub overlaps: usize,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

/// One line of a history.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "lowercase")]
pub enum Op {
    Send(Send),
    Read(Read),
    Commit(Commit),
}

/// A whole history, in the order it was recorded.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct History {
    pub sends: Vec<Send>,
    pub reads: Vec<Read>,
    pub commits: Vec<Commit>,
}

impl History {
    /// Adds one operation.
    pub fn push(&mut self, op: Op) {
        match op {
            Op::Send(send) => self.sends.push(send),
            Op::Read(read) => self.reads.push(read),
            Op::Commit(commit) => self.commits.push(commit),
        }
    }
}

/// Longest line [`read_history`] accepts: a send of a value of a few KiB is far below it.
pub const LINE_BYTES_MAX: usize = 64 * 1024;

/// Why a history file could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum HistoryError {
    #[error("reading the history: {0}")]
    Io(#[from] io::Error),
    #[error("line {line}: longer than {LINE_BYTES_MAX} bytes")]
    LineTooLong { line: usize },
    #[error("line {line}: {source}")]
    Json {
        line: usize,
        #[source]
        source: serde_json::Error,
    },
    #[error("line {line}: an ok send without an offset, or another send with one")]
    Offset { line: usize },
}

/// Parses a JSON-lines history (blank lines skipped), every line bounded by
/// [`LINE_BYTES_MAX`].
///
/// # Errors
/// The first line that cannot be read or is not an [`Op`], with its number (from 1).
pub fn read_history<R: BufRead>(mut input: R) -> Result<History, HistoryError> {
    let mut history = History::default();
    let mut buf = Vec::new();
    for line in 1.. {
        buf.clear();
        let limit = u64::try_from(LINE_BYTES_MAX + 1).unwrap_or(u64::MAX);
        let n = io::Read::take(&mut input, limit).read_until(b'\n', &mut buf)?;
        if n == 0 {
            break;
        }
        if buf.len() > LINE_BYTES_MAX {
            return Err(HistoryError::LineTooLong { line });
        }
        if buf.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let op: Op =
            serde_json::from_slice(&buf).map_err(|source| HistoryError::Json { line, source })?;
        if let Op::Send(send) = &op {
            if (send.outcome == Outcome::Ok) != send.offset.is_some() {
                return Err(HistoryError::Offset { line });
            }
        }
        history.push(op);
    }
    Ok(history)
}

/// One operation as a JSON line (with its newline), for workloads that record in Rust.
pub fn to_line(op: &Op) -> String {
    let mut line = serde_json::to_string(op).unwrap_or_default();
    line.push('\n');
    line
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jepsen_history_round_trips_as_json_lines() {
        let ops = [
            Op::Send(Send {
                producer: "p1".into(),
                seq: 0,
                partition: 2,
                value: "p1-0".into(),
                outcome: Outcome::Ok,
                offset: Some(7),
            }),
            Op::Send(Send {
                producer: "p1".into(),
                seq: 1,
                partition: 2,
                value: "p1-1".into(),
                outcome: Outcome::Info,
                offset: None,
            }),
            Op::Read(Read {
                reader: "node-1".into(),
                partition: 2,
                offset: 7,
                value: "p1-0".into(),
                final_read: true,
            }),
            Op::Commit(Commit {
                group: "g".into(),
                partition: 2,
                offset: 8,
                by: "fetch".into(),
                overlaps: 0,
            }),
        ];
        let text: String = ops.iter().map(to_line).collect::<String>() + "\n";
        assert!(text.starts_with(r#"{"op":"send","producer":"p1","seq":0,"partition":2"#));
        let history = read_history(text.as_bytes()).unwrap();
        assert_eq!(history.sends.len(), 2);
        assert_eq!(history.reads.len(), 1);
        assert_eq!(history.commits.len(), 1);
        let mut again = History::default();
        ops.into_iter().for_each(|op| again.push(op));
        assert_eq!(history, again);
    }

    #[test]
    fn jepsen_bad_lines_are_refused_with_their_number() {
        let bad =
            "{\"op\":\"commit\",\"group\":\"g\",\"partition\":0,\"offset\":1}\n{\"op\":\"nope\"}\n";
        assert!(matches!(
            read_history(bad.as_bytes()),
            Err(HistoryError::Json { line: 2, .. })
        ));
        let no_offset =
            r#"{"op":"send","producer":"p","seq":0,"partition":0,"value":"v","outcome":"ok"}"#;
        assert!(matches!(
            read_history(no_offset.as_bytes()),
            Err(HistoryError::Offset { line: 1 })
        ));
        let long = format!("{}\n", "x".repeat(LINE_BYTES_MAX + 10));
        assert!(matches!(
            read_history(long.as_bytes()),
            Err(HistoryError::LineTooLong { line: 1 })
        ));
    }
}
