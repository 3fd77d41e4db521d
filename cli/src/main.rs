//! `weir`, the command-line tool: produce, consume, topics, groups, perf and completions.
//!
//! # Layout
//!
//! - `args`: the command line (clap), with the examples `--help` prints.
//! - `commands/`: one module per command (`produce`, `consume`, `topics`, `groups`) and the
//!   shared [`commands::Context`].
//! - `perf/`: `weir perf`, its histogram, progress line and report.
//! - `table`, `format`: output tables, record formats. Group assignments are decoded by
//!   `weir_protocol::consumer_protocol` (through `weir_client::protocol`).
//! - `start`: `--offset` and `--to` as kcat and rpk users type them.
//! - `error`: the one-line messages and the exit codes; `shutdown`: Ctrl-C.
//! - `health`: probes that say on stderr when the broker stops answering or a topic goes.
//! - `output`: printing that treats a closed stdout as a quiet stop; `record_output`: what
//!   `weir consume` writes, knowing which records' lines reached the reader.

mod args;
mod commands;
mod error;
mod format;
mod health;
mod output;
mod perf;
mod record_output;
mod shutdown;
mod start;
mod table;

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use args::{Cli, Command};
use commands::Context;
use error::{CliError, CliResult};
use shutdown::Shutdown;

fn main() -> ExitCode {
    let cli = Cli::parse();
    if let Command::Completions { shell } = cli.command {
        // Generated into memory first: clap_complete panics on a failed write, and a reader
        // such as `| head` may close stdout early.
        let mut script = Vec::new();
        clap_complete::generate(shell, &mut Cli::command(), "weir", &mut script);
        return match output::print_to(&mut std::io::stdout().lock(), &script) {
            Ok(()) => ExitCode::SUCCESS,
            Err(err) => fail(&err),
        };
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(source) => {
            return fail(&CliError::Io {
                context: "starting the async runtime".to_owned(),
                source,
            });
        }
    };
    let outcome = runtime.block_on(run(cli));
    // Background tasks (a reader blocked on stdin, client connections) must not delay exit.
    runtime.shutdown_background();
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(&err),
    }
}

fn fail(err: &CliError) -> ExitCode {
    if !matches!(err, CliError::Interrupted | CliError::OutputClosed) {
        output::note!("error: {err}");
    }
    ExitCode::from(err.exit_code())
}

async fn run(cli: Cli) -> CliResult {
    // Only the commands that run until stopped catch Ctrl-C (to stop at a clean point); the
    // others die of it as any command-line tool does.
    let shutdown = match cli.command {
        Command::Produce(_) | Command::Consume(_) | Command::Perf(_) => Shutdown::on_signals(),
        _ => Shutdown::default(),
    };
    let ctx = Context {
        bootstrap: cli.bootstrap,
        shutdown,
    };
    match cli.command {
        Command::Produce(args) => commands::produce::run(&ctx, args).await,
        Command::Consume(args) => commands::consume::run(&ctx, args).await,
        Command::Topics(command) => commands::topics::run(&ctx, command).await,
        Command::Groups(command) => commands::groups::run(&ctx, command).await,
        Command::Perf(command) => perf::run(&ctx, command).await,
        Command::Cluster(command) => commands::cluster::run(&ctx, command).await,
        Command::Completions { .. } => Ok(()),
    }
}
