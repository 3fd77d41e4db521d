//! The `weir-broker` binary: parse the configuration, start the broker, stop it cleanly on
//! SIGINT or SIGTERM (stop accepting, finish in-flight requests, sync, write the clean-shutdown
//! markers).

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;
use weir_broker::{Broker, BrokerConfig};

#[tokio::main]
async fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("WEIR_LOG")
                .unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    let config = BrokerConfig::parse();
    let broker = match Broker::new(config).start().await {
        Ok(broker) => broker,
        Err(err) => {
            eprintln!("weir-broker: {err}");
            return ExitCode::FAILURE;
        }
    };
    if let Err(err) = shutdown_signal().await {
        eprintln!("weir-broker: cannot listen for signals: {err}");
        return ExitCode::FAILURE;
    }
    tracing::info!("shutting down");
    match broker.shutdown().await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("weir-broker: shutdown failed: {err}");
            ExitCode::FAILURE
        }
    }
}

async fn shutdown_signal() -> std::io::Result<()> {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
    tokio::select! {
        result = tokio::signal::ctrl_c() => result,
        _ = term.recv() => Ok(()),
    }
}
