//! The domain: commands, events, and the account aggregate as pure functions.
//!
//! Owns the rules of the ledger and nothing else: no I/O, no clock. [`Ledger::decide`] turns
//! a command into the one event it causes, judged against the state; [`Ledger::apply`] folds
//! an event into the state. Everything else (the command handler, the projection, the
//! verifier, a rebuild from a snapshot) is this fold run over some part of the log, so they
//! cannot disagree about what an event means.
//!
//! Invariants: every command causes exactly one event, which carries the command's id; an
//! account's state remembers the ids it has seen, so a command delivered twice is recognized
//! instead of applied twice; a balance never goes below zero.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// Money in cents.
pub type Amount = i64;

/// A request to change one account, keyed by that account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Command {
    /// Unique per intended effect: a client that retries sends the same id again.
    pub id: String,
    /// The aggregate the command is addressed to (the record key).
    pub account: String,
    /// What to do.
    pub kind: CommandKind,
}

/// What a command asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CommandKind {
    /// Open the account.
    Open {
        /// Who owns it.
        owner: String,
    },
    /// Add money.
    Deposit {
        /// How much.
        amount: Amount,
    },
    /// Take money out.
    Withdraw {
        /// How much.
        amount: Amount,
    },
    /// Move money to another account: the start of the transfer saga. The command id is the
    /// transfer id.
    Transfer {
        /// The receiving account.
        to: String,
        /// How much.
        amount: Amount,
    },
    /// Saga step two, sent by the handler after the debit: credit the receiving account.
    Credit {
        /// The transfer.
        transfer_id: String,
        /// The paying account.
        from: String,
        /// How much.
        amount: Amount,
    },
    /// Saga compensation, sent when the credit was refused: give the money back.
    Refund {
        /// The transfer.
        transfer_id: String,
        /// The account that refused it.
        to: String,
        /// How much.
        amount: Amount,
        /// Why the credit was refused.
        reason: String,
    },
}

/// A fact about one account, keyed by that account.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// The account whose history this is part of.
    pub account: String,
    /// The command that caused it: how a re-delivered command is recognized.
    pub command_id: String,
    /// What happened.
    pub kind: EventKind,
}

/// What happened.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum EventKind {
    /// The account was opened.
    Opened {
        /// Who owns it.
        owner: String,
    },
    /// Money came in.
    Deposited {
        /// How much.
        amount: Amount,
    },
    /// Money went out.
    Withdrawn {
        /// How much.
        amount: Amount,
    },
    /// First leg of a transfer: the money left this account.
    TransferDebited {
        /// The transfer (the Transfer command's id).
        transfer_id: String,
        /// The receiving account.
        to: String,
        /// How much.
        amount: Amount,
    },
    /// Second leg: the money arrived here.
    TransferCredited {
        /// The transfer.
        transfer_id: String,
        /// The paying account.
        from: String,
        /// How much.
        amount: Amount,
    },
    /// Second leg refused (the account is not open); recorded on the refusing account's
    /// stream, even if it was never opened, so a re-delivered credit is recognized too.
    TransferCreditRefused {
        /// The transfer.
        transfer_id: String,
        /// The paying account, which gets a refund.
        from: String,
        /// How much.
        amount: Amount,
        /// Why.
        reason: String,
    },
    /// Compensation: the money of a refused transfer came back.
    TransferRefunded {
        /// The transfer.
        transfer_id: String,
        /// The account that refused it.
        to: String,
        /// How much.
        amount: Amount,
    },
    /// The command was refused; nothing changed but the command is now known.
    Rejected {
        /// Why.
        reason: String,
    },
}

impl EventKind {
    /// What the event does to the balance.
    pub fn delta(&self) -> Amount {
        match self {
            Self::Deposited { amount }
            | Self::TransferCredited { amount, .. }
            | Self::TransferRefunded { amount, .. } => *amount,
            Self::Withdrawn { amount } | Self::TransferDebited { amount, .. } => -*amount,
            Self::Opened { .. } | Self::TransferCreditRefused { .. } | Self::Rejected { .. } => 0,
        }
    }
}

impl Event {
    /// The command the saga sends because of this event, if any. A pure function of the
    /// event, so a handler that finds the event already written (after a crash) sends the
    /// same command again, and the receiver recognizes it by its id.
    pub fn follow_up(&self) -> Option<Command> {
        match &self.kind {
            EventKind::TransferDebited {
                transfer_id,
                to,
                amount,
            } => Some(Command {
                id: format!("{transfer_id}/credit"),
                account: to.clone(),
                kind: CommandKind::Credit {
                    transfer_id: transfer_id.clone(),
                    from: self.account.clone(),
                    amount: *amount,
                },
            }),
            EventKind::TransferCreditRefused {
                transfer_id,
                from,
                amount,
                reason,
            } => Some(Command {
                id: format!("{transfer_id}/refund"),
                account: from.clone(),
                kind: CommandKind::Refund {
                    transfer_id: transfer_id.clone(),
                    to: self.account.clone(),
                    amount: *amount,
                    reason: reason.clone(),
                },
            }),
            _ => None,
        }
    }
}

/// One account's state, as folded from its events.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Account {
    /// Its owner once opened.
    pub owner: Option<String>,
    /// The balance in cents; never negative.
    pub balance: Amount,
    /// Every command id this account has handled, with the follow-up command it caused:
    /// the idempotency table. (A production system would bound it, e.g. by client sequence
    /// numbers or a retention window; a demo keeps all.)
    pub handled: BTreeMap<String, Option<Command>>,
}

/// The outcome of a command against the state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// A new command: this event records its effect (or its rejection).
    New(Event),
    /// Seen before: nothing to write; re-send this follow-up, if any (the crash may have
    /// come between the event and the follow-up).
    Duplicate(Option<Command>),
}

/// The state of a set of accounts (one partition's, or all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// By account id.
    pub accounts: BTreeMap<String, Account>,
}

/// An event that cannot follow the state it is applied to: the log is not one this code
/// wrote, or a command was applied without its rules.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("event {command_id} on {account} breaks the ledger: {why}")]
pub struct FoldError {
    /// The account.
    pub account: String,
    /// The event's command id.
    pub command_id: String,
    /// What it breaks.
    pub why: &'static str,
}

impl Ledger {
    /// Judges `command` against the current state.
    pub fn decide(&self, command: &Command) -> Decision {
        let account = self.accounts.get(&command.account);
        if let Some(follow_up) = account.and_then(|a| a.handled.get(&command.id)) {
            return Decision::Duplicate(follow_up.clone());
        }
        let open = account.is_some_and(|a| a.owner.is_some());
        let balance = account.map_or(0, |a| a.balance);
        let reject = |reason: &str| EventKind::Rejected {
            reason: reason.to_owned(),
        };
        let kind = match &command.kind {
            CommandKind::Open { owner } if !open => EventKind::Opened {
                owner: owner.clone(),
            },
            CommandKind::Open { .. } => reject("already open"),
            _ if !open && !matches!(command.kind, CommandKind::Credit { .. }) => {
                reject("account not open")
            }
            CommandKind::Deposit { amount }
            | CommandKind::Withdraw { amount }
            | CommandKind::Transfer { amount, .. }
                if *amount <= 0 =>
            {
                reject("amount must be positive")
            }
            CommandKind::Deposit { amount } => EventKind::Deposited { amount: *amount },
            CommandKind::Withdraw { amount } | CommandKind::Transfer { amount, .. }
                if *amount > balance =>
            {
                reject("insufficient funds")
            }
            CommandKind::Withdraw { amount } => EventKind::Withdrawn { amount: *amount },
            CommandKind::Transfer { to, .. } if *to == command.account => {
                reject("transfer to the same account")
            }
            CommandKind::Transfer { to, amount } => EventKind::TransferDebited {
                transfer_id: command.id.clone(),
                to: to.clone(),
                amount: *amount,
            },
            CommandKind::Credit {
                transfer_id,
                from,
                amount,
            } if open => EventKind::TransferCredited {
                transfer_id: transfer_id.clone(),
                from: from.clone(),
                amount: *amount,
            },
            CommandKind::Credit {
                transfer_id,
                from,
                amount,
            } => EventKind::TransferCreditRefused {
                transfer_id: transfer_id.clone(),
                from: from.clone(),
                amount: *amount,
                reason: "account not open".to_owned(),
            },
            CommandKind::Refund {
                transfer_id,
                to,
                amount,
                ..
            } => EventKind::TransferRefunded {
                transfer_id: transfer_id.clone(),
                to: to.clone(),
                amount: *amount,
            },
        };
        Decision::New(Event {
            account: command.account.clone(),
            command_id: command.id.clone(),
            kind,
        })
    }

    /// Folds `event` into the state.
    ///
    /// # Errors
    /// [`FoldError`] when the event cannot follow the state: the same command twice, or a
    /// balance below zero. The log written by [`Self::decide`] never has either; the
    /// verifier relies on this check.
    pub fn apply(&mut self, event: &Event) -> Result<(), FoldError> {
        let fail = |why| FoldError {
            account: event.account.clone(),
            command_id: event.command_id.clone(),
            why,
        };
        let account = self.accounts.entry(event.account.clone()).or_default();
        if account.handled.contains_key(&event.command_id) {
            return Err(fail("the command took effect twice"));
        }
        let balance = account
            .balance
            .checked_add(event.kind.delta())
            .ok_or_else(|| fail("balance overflow"))?;
        if balance < 0 {
            return Err(fail("balance below zero"));
        }
        account.balance = balance;
        if let EventKind::Opened { owner } = &event.kind {
            account.owner = Some(owner.clone());
        }
        account
            .handled
            .insert(event.command_id.clone(), event.follow_up());
        Ok(())
    }

    /// The sum of all balances.
    pub fn total(&self) -> Amount {
        self.accounts.values().map(|a| a.balance).sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cmd(id: &str, account: &str, kind: CommandKind) -> Command {
        Command {
            id: id.to_owned(),
            account: account.to_owned(),
            kind,
        }
    }

    fn run(ledger: &mut Ledger, command: &Command) -> Decision {
        let decision = ledger.decide(command);
        if let Decision::New(event) = &decision {
            ledger.apply(event).expect("decide only makes valid events");
        }
        decision
    }

    #[test]
    fn a_transfer_to_an_unknown_account_is_refunded_and_duplicates_are_recognized() {
        let mut ledger = Ledger::default();
        let open = CommandKind::Open {
            owner: "ann".into(),
        };
        run(&mut ledger, &cmd("c1", "a", open));
        run(
            &mut ledger,
            &cmd("c2", "a", CommandKind::Deposit { amount: 100 }),
        );
        let transfer = cmd(
            "t1",
            "a",
            CommandKind::Transfer {
                to: "nobody".into(),
                amount: 60,
            },
        );
        let Decision::New(debit) = run(&mut ledger, &transfer) else {
            panic!("new command")
        };
        assert_eq!(ledger.accounts["a"].balance, 40);
        let credit = debit.follow_up().expect("a debit is followed by a credit");
        // The crash case: the transfer arrives again; the same credit goes out again.
        assert_eq!(
            run(&mut ledger, &transfer),
            Decision::Duplicate(Some(credit.clone()))
        );
        let Decision::New(refused) = run(&mut ledger, &credit) else {
            panic!("new command")
        };
        let refund = refused
            .follow_up()
            .expect("a refusal is followed by a refund");
        assert!(matches!(
            run(&mut ledger, &credit),
            Decision::Duplicate(Some(_))
        ));
        run(&mut ledger, &refund);
        assert!(matches!(
            run(&mut ledger, &refund),
            Decision::Duplicate(None)
        ));
        assert_eq!(ledger.accounts["a"].balance, 100);
        assert_eq!(ledger.total(), 100);
    }

    #[test]
    fn overdrafts_and_closed_accounts_are_rejected_and_apply_refuses_doubles() {
        let mut ledger = Ledger::default();
        let withdraw = cmd("w", "a", CommandKind::Withdraw { amount: 1 });
        let Decision::New(rejected) = run(&mut ledger, &withdraw) else {
            panic!("new command")
        };
        assert!(matches!(rejected.kind, EventKind::Rejected { .. }));
        run(
            &mut ledger,
            &cmd("o", "a", CommandKind::Open { owner: "x".into() }),
        );
        let Decision::New(again) =
            ledger.decide(&cmd("w2", "a", CommandKind::Withdraw { amount: 1 }))
        else {
            panic!("new command")
        };
        assert_eq!(
            again.kind,
            EventKind::Rejected {
                reason: "insufficient funds".into()
            }
        );
        assert!(ledger.apply(&rejected).is_err(), "same command id twice");
        let overdraft = Event {
            account: "a".into(),
            command_id: "w3".into(),
            kind: EventKind::Withdrawn { amount: 5 },
        };
        assert!(ledger.apply(&overdraft).is_err());
    }
}
