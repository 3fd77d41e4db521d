//! The `weir-broker` binary: parse and check the configuration, start the broker, stop it
//! cleanly on SIGINT or SIGTERM (stop accepting, finish in-flight requests, sync, write the
//! clean-shutdown markers).
//!
//! Logging never fails the broker: log lines and the few messages printed here go to stderr
//! through [`LossyStderr`], which drops what cannot be written. When stderr is a pipe whose
//! reader has gone (`weir-broker 2>&1 | head`, a log shipper that died), lines are lost but
//! requests are answered and the shutdown is clean. Rust sets SIGPIPE to "ignore" before
//! `main`, so such a write returns EPIPE instead of killing the process.

use std::io::{IsTerminal, Write};
use std::process::ExitCode;

use clap::Parser;
use weir_broker::config::LogFormat;
use weir_broker::{Broker, BrokerConfig};

/// Exit status for a configuration that is refused (as clap's usage errors).
const EXIT_BAD_CONFIG: u8 = 2;

#[tokio::main]
async fn main() -> ExitCode {
    let config = BrokerConfig::parse();
    init_logging(config.log_format);
    if let Err(err) = config.validate() {
        say(format_args!("weir-broker: {err}"));
        return ExitCode::from(EXIT_BAD_CONFIG);
    }
    // Installed before the broker starts: a SIGTERM that arrives while it opens (recovery can
    // take seconds) or just after it listens then waits for the start and stops it cleanly,
    // instead of killing it with the default action and forcing a recovery next time.
    let signals = match ShutdownSignals::install() {
        Ok(signals) => signals,
        Err(err) => {
            say(format_args!(
                "weir-broker: cannot listen for signals: {err}"
            ));
            return ExitCode::FAILURE;
        }
    };
    let broker = match Broker::new(config).start().await {
        Ok(broker) => broker,
        Err(err) => {
            say(format_args!("weir-broker: {err}"));
            return ExitCode::FAILURE;
        }
    };
    signals.recv().await;
    tracing::info!("shutting down");
    match broker.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            say(format_args!("weir-broker: shutdown failed: {err}"));
            ExitCode::FAILURE
        }
    }
}

/// The log filter: `WEIR_LOG` (default `info`). openraft's own lines are off unless
/// `WEIR_LOG` names it (`WEIR_LOG=info,openraft=warn`): it logs every vote, and an error for
/// every replication attempt to a node that is down (twice a second), which drowns the
/// broker's lines; the broker logs leader changes and fencing itself.
fn log_filter(spec: Option<String>) -> tracing_subscriber::EnvFilter {
    let spec = spec.unwrap_or_else(|| "info".to_owned());
    let spec = if spec.contains("openraft") {
        spec
    } else {
        format!("{spec},openraft=off")
    };
    tracing_subscriber::EnvFilter::try_new(spec).unwrap_or_else(|_| "info,openraft=off".into())
}

/// Log lines to stderr at the level `WEIR_LOG` says (default `info`), as text or JSON.
fn init_logging(format: LogFormat) {
    let logs = tracing_subscriber::fmt()
        .with_env_filter(log_filter(std::env::var("WEIR_LOG").ok()))
        .with_writer(|| LossyStderr)
        // Its own report of a failed write goes to stderr with eprintln!, which panics when
        // stderr is closed; our writer never reports a failure anyway.
        .log_internal_errors(false);
    match format {
        LogFormat::Text => logs.with_ansi(std::io::stderr().is_terminal()).init(),
        LogFormat::Json => logs.json().flatten_event(true).init(),
    }
}

/// Writes one line to stderr, dropping it if stderr is closed (`eprintln!` would panic).
fn say(message: std::fmt::Arguments<'_>) {
    // LossyStderr swallows write errors: a message that cannot be shown is lost, and the
    // exit status still tells the outcome.
    match writeln!(LossyStderr, "{message}") {
        Ok(()) | Err(_) => {}
    }
}

/// Stderr that never fails: a line that cannot be written (closed pipe, full disk under a
/// redirect) is dropped, and logging carries on with the next one.
#[derive(Debug, Clone, Copy)]
struct LossyStderr;

impl Write for LossyStderr {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        // One write_all per event keeps lines whole under the lock stderr takes.
        match std::io::stderr().lock().write_all(buf) {
            Ok(()) | Err(_) => Ok(buf.len()),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match std::io::stderr().lock().flush() {
            Ok(()) | Err(_) => Ok(()),
        }
    }
}

/// SIGINT and SIGTERM, caught from the moment they are installed.
struct ShutdownSignals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
}

impl ShutdownSignals {
    fn install() -> std::io::Result<Self> {
        use tokio::signal::unix::{SignalKind, signal};
        Ok(Self {
            interrupt: signal(SignalKind::interrupt())?,
            terminate: signal(SignalKind::terminate())?,
        })
    }

    /// Waits for either (including one that arrived before this call).
    async fn recv(mut self) {
        tokio::select! {
            _ = self.interrupt.recv() => {}
            _ = self.terminate.recv() => {}
        }
    }
}
