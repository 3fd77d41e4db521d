//! The `bank-ledger` binary: the scripted demo (on an embedded broker unless `--bootstrap`
//! is given), and each service as a subcommand, as the README's walkthrough and the
//! end-to-end test run them.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bank_ledger::embedded::Embedded;
use bank_ledger::model::{Command, CommandKind};
use bank_ledger::projection::{ProjectionConfig, ReadModel};
use bank_ledger::{Result, demo, handler, projection, snapshot, topics, verify};
use clap::{Parser, Subcommand};
use weir_client::backoff::SplitMix64;

/// An event-sourced bank ledger on Weir.
#[derive(Debug, Parser)]
#[command(name = "bank-ledger", version, about)]
struct Cli {
    /// A running broker (host:port). Without it, `demo` starts an embedded one and the
    /// other subcommands refuse to run.
    #[arg(long, global = true)]
    bootstrap: Option<String>,
    #[command(subcommand)]
    command: Option<Cmd>,
}

#[derive(Debug, Subcommand)]
enum Cmd {
    /// The scripted session (the default).
    Demo {
        /// Where the embedded broker listens.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The embedded broker's data directory (default: a temporary one).
        #[arg(long)]
        data_dir: Option<PathBuf>,
        /// Keep the broker running after the session, for the `weir` CLI, until Ctrl-C.
        #[arg(long)]
        keep_running: bool,
    },
    /// Creates the topics.
    Setup,
    /// Runs the command handler (a member of the `ledger-handler` group).
    Handler {
        /// Group session timeout in milliseconds.
        #[arg(long, default_value_t = 6_000)]
        session_timeout_ms: u64,
        /// Snapshot a partition after this many new events.
        #[arg(long, default_value_t = 100)]
        snapshot_every: u32,
        /// For the crash test: exit (as if killed) at a step boundary of a batch, once in
        /// this many boundaries on average.
        #[arg(long)]
        crash_one_in: Option<u64>,
        /// Seed of the injected crashes.
        #[arg(long, default_value_t = 0)]
        crash_seed: u64,
    },
    /// Runs the projection service (group `ledger-projection`).
    Projection {
        /// The read model's checkpoint file.
        #[arg(long)]
        state: PathBuf,
        /// Delete the checkpoint first: rebuild the read model from offset 0.
        #[arg(long)]
        rebuild: bool,
        /// Group session timeout in milliseconds.
        #[arg(long, default_value_t = 6_000)]
        session_timeout_ms: u64,
        /// Checkpoint interval in milliseconds.
        #[arg(long, default_value_t = 500)]
        checkpoint_ms: u64,
    },
    /// Sends one command.
    Send {
        /// The account it is addressed to.
        account: String,
        #[command(subcommand)]
        kind: SendKind,
        /// The command id (default: a new one); send the same id again to see it recognized.
        #[arg(long, global = true)]
        id: Option<String>,
    },
    /// Prints the read model from a projection checkpoint.
    Show {
        /// The checkpoint file.
        #[arg(long)]
        state: PathBuf,
        /// Only this account.
        #[arg(long)]
        account: Option<String>,
    },
    /// Reads every event and checks the invariants; compares with a checkpoint if given.
    Verify {
        /// A projection checkpoint to compare.
        #[arg(long)]
        state: Option<PathBuf>,
    },
    /// Rebuilds one partition's accounts from its latest snapshot and prints them.
    Rebuild {
        /// The partition.
        partition: i32,
        /// Ignore snapshots and fold from offset 0.
        #[arg(long)]
        from_scratch: bool,
    },
}

#[derive(Debug, Subcommand)]
enum SendKind {
    /// Open the account.
    Open {
        /// The owner's name.
        owner: String,
    },
    /// Deposit cents.
    Deposit {
        /// Cents.
        amount: i64,
    },
    /// Withdraw cents.
    Withdraw {
        /// Cents.
        amount: i64,
    },
    /// Transfer cents to another account.
    Transfer {
        /// The receiving account.
        to: String,
        /// Cents.
        amount: i64,
    },
}

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("bank-ledger: {err}");
            ExitCode::FAILURE
        }
    }
}

fn ms(ms: u64) -> Duration {
    Duration::from_millis(ms)
}

async fn run(cli: Cli) -> Result<()> {
    let command = cli.command.unwrap_or(Cmd::Demo {
        listen: SocketAddr::from(([127, 0, 0, 1], 0)),
        data_dir: None,
        keep_running: false,
    });
    if let Cmd::Demo {
        listen,
        data_dir,
        keep_running,
    } = command
    {
        return run_demo(cli.bootstrap, listen, data_dir, keep_running).await;
    }
    if let Cmd::Show { state, account } = &command {
        // Reads only the local checkpoint: no broker needed.
        demo::print_model(&ReadModel::load(state)?, account.as_deref());
        return Ok(());
    }
    let Some(bootstrap) = cli.bootstrap else {
        eprintln!("bank-ledger: this subcommand needs --bootstrap host:port");
        std::process::exit(2);
    };
    match command {
        Cmd::Setup => topics::setup(&bootstrap).await,
        Cmd::Handler {
            session_timeout_ms,
            snapshot_every,
            crash_one_in,
            crash_seed,
        } => {
            topics::setup(&bootstrap).await?;
            handler::run(handler::HandlerConfig {
                bootstrap,
                session_timeout: ms(session_timeout_ms),
                snapshot_every,
                crashes: crash_one_in.map(|one_in| handler::CrashInjection {
                    one_in,
                    rng: SplitMix64::new(crash_seed),
                }),
            })
            .await
        }
        Cmd::Projection {
            state,
            rebuild,
            session_timeout_ms,
            checkpoint_ms,
        } => {
            if rebuild {
                match std::fs::remove_file(&state) {
                    Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                        return Err(bank_ledger::Error::File {
                            path: state.display().to_string(),
                            source: err,
                        });
                    }
                    _ => {}
                }
            }
            topics::setup(&bootstrap).await?;
            projection::run(ProjectionConfig {
                bootstrap,
                state,
                session_timeout: ms(session_timeout_ms),
                checkpoint_interval: ms(checkpoint_ms),
            })
            .await
        }
        Cmd::Send { account, kind, id } => {
            let id = id.unwrap_or_else(|| {
                let nanos = SystemTime::now()
                    .duration_since(UNIX_EPOCH)
                    .map_or(0, |d| d.as_nanos());
                format!("cli-{nanos:x}")
            });
            let kind = match kind {
                SendKind::Open { owner } => CommandKind::Open { owner },
                SendKind::Deposit { amount } => CommandKind::Deposit { amount },
                SendKind::Withdraw { amount } => CommandKind::Withdraw { amount },
                SendKind::Transfer { to, amount } => CommandKind::Transfer { to, amount },
            };
            println!("command {id}");
            demo::send(&bootstrap, &[Command { id, account, kind }]).await
        }
        Cmd::Demo { .. } | Cmd::Show { .. } => Ok(()),
        Cmd::Verify { state } => {
            let log = verify::EventLog::read(&bootstrap).await?;
            let report = verify::check(&log)?;
            println!("{report:#?}");
            if let Some(state) = state {
                let same = ReadModel::load(&state)? == log.project();
                println!("projection checkpoint equals the fold of all events: {same}");
            }
            Ok(())
        }
        Cmd::Rebuild {
            partition,
            from_scratch,
        } => {
            let rebuilt = snapshot::rebuild(&bootstrap, partition, !from_scratch).await?;
            println!(
                "partition {partition}: from snapshot at events offset {}, up to {}",
                rebuilt.snapshot_offset, rebuilt.events_offset
            );
            for (id, account) in &rebuilt.ledger.accounts {
                println!(
                    "{id:<10} balance {:>8}  {} commands handled",
                    account.balance,
                    account.handled.len()
                );
            }
            Ok(())
        }
    }
}

async fn run_demo(
    bootstrap: Option<String>,
    listen: SocketAddr,
    data_dir: Option<PathBuf>,
    keep_running: bool,
) -> Result<()> {
    if let Some(bootstrap) = bootstrap {
        let dir = tempfile::tempdir().map_err(|source| bank_ledger::Error::File {
            path: "temporary directory".to_owned(),
            source,
        })?;
        return demo::run(&bootstrap, &dir.path().join("read-model.json")).await;
    }
    let broker = Embedded::start(listen, data_dir.clone()).await?;
    let bootstrap = broker.addr().to_string();
    println!("embedded broker on {bootstrap}");
    let state_dir = tempfile::tempdir().map_err(|source| bank_ledger::Error::File {
        path: "temporary directory".to_owned(),
        source,
    })?;
    let state = data_dir.map_or_else(
        || state_dir.path().join("read-model.json"),
        |d| d.join("read-model.json"),
    );
    let result = demo::run(&bootstrap, &state).await;
    if result.is_ok() && keep_running {
        println!(
            "\nthe broker keeps running; look at the raw events with\n  weir consume --bootstrap {bootstrap} -t {} --offset beginning --format json --exit-at-end\nCtrl-C to stop",
            topics::EVENTS
        );
        if let Err(err) = tokio::signal::ctrl_c().await {
            eprintln!("bank-ledger: cannot wait for Ctrl-C: {err}");
        }
    }
    broker.shutdown().await?;
    result
}
