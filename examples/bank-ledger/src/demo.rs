//! The scripted session `bank-ledger` runs by default: the services as tasks, a handful of
//! commands that show each rule (a retried deposit, an overdraft, a transfer, a transfer to
//! an account that does not exist and its refund), then the read model.

use std::path::Path;
use std::time::Duration;

use weir_client::{Producer, ProducerConfig};

use crate::error::{Error, Result};
use crate::handler::{self, HandlerConfig, command_record};
use crate::model::{Command, CommandKind};
use crate::projection::{self, ProjectionConfig, ReadModel};
use crate::{settle, topics, verify};

fn command(id: &str, account: &str, kind: CommandKind) -> Command {
    Command {
        id: id.to_owned(),
        account: account.to_owned(),
        kind,
    }
}

/// The session's commands in three rounds; each round is handled before the next is sent,
/// so the output reads as a story.
pub fn script() -> Vec<Vec<Command>> {
    // Amounts are in cents.
    use CommandKind::{Deposit, Open, Transfer, Withdraw};
    let open = |owner: &str| Open {
        owner: owner.to_owned(),
    };
    let transfer = |to: &str, amount| Transfer {
        to: to.to_owned(),
        amount,
    };
    vec![
        vec![
            command("open-alice", "alice", open("Alice")),
            command("open-bob", "bob", open("Bob")),
            command("dep-1", "alice", Deposit { amount: 10_000 }),
            // A client that timed out and retried: same id, so it is applied once.
            command("dep-1", "alice", Deposit { amount: 10_000 }),
            command("wd-1", "bob", Withdraw { amount: 500 }),
        ],
        vec![
            command("tr-1", "alice", transfer("bob", 3_000)),
            // carol has no account: the credit is refused and alice is refunded.
            command("tr-2", "alice", transfer("carol", 1_000)),
        ],
        vec![
            command("wd-2", "bob", Withdraw { amount: 750 }),
            command("wd-3", "bob", Withdraw { amount: 5_000 }),
        ],
    ]
}

/// Sends commands with one idempotent producer and waits for every acknowledgement.
///
/// # Errors
/// The client's failure.
pub async fn send(bootstrap: &str, commands: &[Command]) -> Result<()> {
    let producer = Producer::new(ProducerConfig::new([bootstrap]))?;
    let mut pending = Vec::new();
    for command in commands {
        let delivery = producer
            .send(command_record(command)?)
            .await
            .map_err(Box::new)?;
        pending.push((command.id.clone(), delivery));
    }
    for (id, delivery) in pending {
        delivery.await.map_err(|source| Error::Delivery {
            what: format!("command {id}"),
            source,
        })?;
    }
    producer.close().await.map_err(Error::from)?;
    Ok(())
}

/// Prints the read model: balances, then each account's history.
pub fn print_model(model: &ReadModel, account: Option<&str>) {
    for (id, view) in &model.accounts {
        if account.is_some_and(|a| a != id) {
            continue;
        }
        let owner = view.owner.as_deref().unwrap_or("(not open)");
        println!("{id:<10} {owner:<12} balance {:>10}", cents(view.balance));
        for entry in &view.history {
            println!(
                "    @{:<5} {:<16} {:>+10}  {}",
                entry.offset, entry.command_id, entry.delta, entry.what
            );
        }
    }
}

fn cents(amount: i64) -> String {
    format!("{}.{:02}", amount / 100, (amount % 100).abs())
}

/// Runs the session against `bootstrap`, with the projection's checkpoint in `state`.
///
/// # Errors
/// Any service's failure, or the services not catching up within a minute.
pub async fn run(bootstrap: &str, state: &Path) -> Result<()> {
    topics::setup(bootstrap).await?;
    let services = [
        tokio::spawn(handler::run(HandlerConfig {
            bootstrap: bootstrap.to_owned(),
            session_timeout: Duration::from_secs(6),
            snapshot_every: 3,
            crashes: None,
        })),
        tokio::spawn(projection::run(ProjectionConfig {
            bootstrap: bootstrap.to_owned(),
            state: state.to_owned(),
            session_timeout: Duration::from_secs(6),
            checkpoint_interval: Duration::from_millis(200),
        })),
    ];
    let rounds = async {
        let mut model = ReadModel::default();
        for (round, commands) in script().iter().enumerate() {
            println!(
                "round {}: sending {} commands to {}",
                round + 1,
                commands.len(),
                topics::COMMANDS
            );
            send(bootstrap, commands).await?;
            model = settle::wait(bootstrap, state, Duration::from_secs(60)).await?;
        }
        Ok::<_, Error>(model)
    }
    .await;
    for service in &services {
        service.abort();
    }
    let model = rounds?;
    println!("\nread model ({}):", state.display());
    print_model(&model, None);
    let log = verify::EventLog::read(bootstrap).await?;
    let report = verify::check(&log)?;
    println!(
        "\n{} events; {} transfers ({} refunded); {} rejected; total {} = deposits {} - withdrawals {}",
        report.events,
        report.transfers,
        report.refunded,
        report.rejected,
        cents(report.total),
        cents(report.deposited),
        cents(report.withdrawn)
    );
    for violation in &report.violations {
        println!("VIOLATION: {violation}");
    }
    Ok(())
}
