//! The `stock-history` binary: the scripted demo (on an embedded broker unless
//! `--bootstrap` is given), and the snapshotter, recording and the as-of query as
//! subcommands.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use stock_history::embedded::Embedded;
use stock_history::model::Movement;
use stock_history::snapshotter::SnapshotterConfig;
use stock_history::{Error, Result, demo, query, snapshotter, time, topics};
use weir_client::backoff::SplitMix64;

/// Warehouse stock as of any moment, on Weir.
#[derive(Debug, Parser)]
#[command(name = "stock-history", version, about)]
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
    /// Runs the snapshotter (a member of the `stock-snapshotter` group).
    Snapshotter {
        /// Group session timeout in milliseconds.
        #[arg(long, default_value_t = 6_000)]
        session_timeout_ms: u64,
        /// Snapshot a partition after this many movements.
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
    /// Records one movement.
    Record {
        /// The SKU.
        sku: String,
        /// Units in (positive) or out (negative).
        #[arg(allow_negative_numbers = true)]
        delta: i64,
        /// Why.
        #[arg(long, default_value = "manual")]
        reason: String,
        /// When it happened (ms since the epoch or YYYY-MM-DDTHH:MM[:SS]Z; default now).
        #[arg(long)]
        at: Option<String>,
    },
    /// Prints stock as of a time.
    AsOf {
        /// Ms since the epoch or YYYY-MM-DDTHH:MM[:SS]Z (UTC).
        time: String,
        /// Print the whole answer as JSON.
        #[arg(long)]
        json: bool,
    },
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
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
    match run(Cli::parse()).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("stock-history: {err}");
            ExitCode::FAILURE
        }
    }
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
    let Some(bootstrap) = cli.bootstrap else {
        eprintln!("stock-history: this subcommand needs --bootstrap host:port");
        std::process::exit(2);
    };
    match command {
        Cmd::Demo { .. } => Ok(()),
        Cmd::Setup => topics::setup(&bootstrap).await,
        Cmd::Snapshotter {
            session_timeout_ms,
            snapshot_every,
            crash_one_in,
            crash_seed,
        } => {
            topics::setup(&bootstrap).await?;
            snapshotter::run(SnapshotterConfig {
                bootstrap,
                session_timeout: Duration::from_millis(session_timeout_ms),
                snapshot_every,
                crashes: crash_one_in.map(|one_in| snapshotter::CrashInjection {
                    one_in,
                    rng: SplitMix64::new(crash_seed),
                }),
            })
            .await
        }
        Cmd::Record {
            sku,
            delta,
            reason,
            at,
        } => {
            let at = at.as_deref().map_or_else(|| Ok(now_ms()), time::parse)?;
            let movement = Movement {
                id: format!("cli-{:x}", now_ms()),
                sku,
                delta,
                reason,
            };
            println!("movement {} at {}", movement.id, time::format(at));
            demo::record(&bootstrap, &[(at, movement)]).await
        }
        Cmd::AsOf { time: text, json } => {
            let answer = query::as_of(&bootstrap, time::parse(&text)?).await?;
            if json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&answer).map_err(Error::Encode)?
                );
            } else {
                println!("as of {}:", time::format(answer.time));
                for (sku, level) in &answer.stock.levels {
                    println!("  {sku:<12} {level:>8}");
                }
                for p in &answer.partitions {
                    println!(
                        "  partition {}: snapshot {:?}, replayed offsets {}..{}",
                        p.partition, p.snapshot, p.from, p.cut
                    );
                }
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
        return demo::run(&bootstrap, now_ms()).await;
    }
    let broker = Embedded::start(listen, data_dir).await?;
    let bootstrap = broker.addr().to_string();
    println!("embedded broker on {bootstrap}");
    let result = demo::run(&bootstrap, now_ms()).await;
    if result.is_ok() && keep_running {
        println!(
            "\nthe broker keeps running; try\n  stock-history --bootstrap {bootstrap} as-of <YYYY-MM-DDTHH:MMZ>\n  weir consume --bootstrap {bootstrap} -t {} --offset beginning --format json --exit-at-end\nCtrl-C to stop",
            topics::MOVEMENTS
        );
        if let Err(err) = tokio::signal::ctrl_c().await {
            eprintln!("stock-history: cannot wait for Ctrl-C: {err}");
        }
    }
    broker.shutdown().await?;
    result
}
