//! The ledger's invariants, checked against the whole events log: what `bank-ledger verify`
//! prints and what the end-to-end test asserts.
//!
//! Reads every event from offset 0 and folds it with [`Ledger::apply`], which itself refuses
//! a command id seen twice on an account and a negative balance. On top of the fold:
//! every transfer saga is finished (each debit has exactly one credit, or one refusal and
//! one refund), and the money in all accounts equals deposits minus withdrawals, so
//! transfers moved money without making or losing any.

use std::collections::BTreeMap;

use crate::error::Result;
use crate::log;
use crate::model::{Amount, Event, EventKind, Ledger};
use crate::projection::ReadModel;
use crate::topics::{EVENTS, PARTITIONS};

/// Every event, in log order per partition.
#[derive(Debug, Clone, Default)]
pub struct EventLog {
    /// `(partition, offset, event)`.
    pub events: Vec<(i32, i64, Event)>,
    /// The end offset of each partition when it was read.
    pub end_offsets: Vec<i64>,
}

impl EventLog {
    /// Reads the whole events topic.
    ///
    /// # Errors
    /// The client's failure or an undecodable event.
    pub async fn read(bootstrap: &str) -> Result<Self> {
        let end_offsets = log::end_offsets(bootstrap, EVENTS, PARTITIONS).await?;
        let mut events = Vec::new();
        for (partition, &end) in (0..PARTITIONS).zip(&end_offsets) {
            for record in log::read(bootstrap, EVENTS, partition, 0, end).await? {
                events.push((partition, record.offset, log::decode(&record)?));
            }
        }
        Ok(Self {
            events,
            end_offsets,
        })
    }

    /// The fold of one partition's events (all partitions with `None`).
    ///
    /// # Errors
    /// A [`crate::model::FoldError`]: a command that took effect twice, a negative balance.
    pub fn fold(&self, partition: Option<i32>) -> Result<Ledger> {
        let mut ledger = Ledger::default();
        for (p, _, event) in &self.events {
            if partition.is_none_or(|want| want == *p) {
                ledger.apply(event)?;
            }
        }
        Ok(ledger)
    }

    /// The read model the projection must have built from these events.
    pub fn project(&self) -> ReadModel {
        let mut model = ReadModel::default();
        for (p, offset, event) in &self.events {
            model.apply(*p, *offset, event);
        }
        model
    }
}

/// What the log adds up to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    /// Events read.
    pub events: usize,
    /// Accounts opened.
    pub accounts: usize,
    /// Sum of deposits.
    pub deposited: Amount,
    /// Sum of withdrawals.
    pub withdrawn: Amount,
    /// Sum of all balances.
    pub total: Amount,
    /// Transfers debited.
    pub transfers: usize,
    /// Of those, refunded after the receiver refused.
    pub refunded: usize,
    /// Commands rejected.
    pub rejected: usize,
    /// Everything wrong, in words; empty when every invariant holds.
    pub violations: Vec<String>,
}

/// Checks every invariant of the log (with a finished saga expected for every transfer: call
/// it once the handlers have caught up).
///
/// # Errors
/// Only the fold's own refusal (a command twice, a negative balance), as an error rather
/// than a violation because nothing after it can be trusted.
pub fn check(log: &EventLog) -> Result<Report> {
    let ledger = log.fold(None)?;
    let mut report = Report {
        events: log.events.len(),
        accounts: ledger
            .accounts
            .values()
            .filter(|a| a.owner.is_some())
            .count(),
        total: ledger.total(),
        ..Report::default()
    };
    /// Per transfer: debits, credits, refusals, refunds.
    #[derive(Default)]
    struct Saga {
        debited: Vec<Amount>,
        credited: Vec<Amount>,
        refused: usize,
        refunded: Vec<Amount>,
    }
    let mut sagas: BTreeMap<&str, Saga> = BTreeMap::new();
    for (_, _, event) in &log.events {
        match &event.kind {
            EventKind::Deposited { amount } => report.deposited += amount,
            EventKind::Withdrawn { amount } => report.withdrawn += amount,
            EventKind::TransferDebited {
                transfer_id,
                amount,
                ..
            } => sagas.entry(transfer_id).or_default().debited.push(*amount),
            EventKind::TransferCredited {
                transfer_id,
                amount,
                ..
            } => sagas.entry(transfer_id).or_default().credited.push(*amount),
            EventKind::TransferCreditRefused { transfer_id, .. } => {
                sagas.entry(transfer_id).or_default().refused += 1;
            }
            EventKind::TransferRefunded {
                transfer_id,
                amount,
                ..
            } => sagas.entry(transfer_id).or_default().refunded.push(*amount),
            EventKind::Rejected { .. } => report.rejected += 1,
            EventKind::Opened { .. } => {}
        }
    }
    for (id, saga) in &sagas {
        let finished = match (saga.debited.as_slice(), saga.credited.as_slice()) {
            ([debit], [credit]) => credit == debit && saga.refused == 0 && saga.refunded.is_empty(),
            ([debit], []) => saga.refused == 1 && saga.refunded == [*debit],
            _ => false,
        };
        if !finished {
            report.violations.push(format!(
                "transfer {id}: debited {:?}, credited {:?}, refused {}, refunded {:?}",
                saga.debited, saga.credited, saga.refused, saga.refunded
            ));
        }
        report.transfers += saga.debited.len();
        report.refunded += saga.refunded.len();
    }
    if report.total != report.deposited - report.withdrawn {
        report.violations.push(format!(
            "money: balances sum to {}, deposits - withdrawals = {}",
            report.total,
            report.deposited - report.withdrawn
        ));
    }
    Ok(report)
}
