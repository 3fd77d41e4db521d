//! The in-process broker a demo runs on when no `--bootstrap` is given.
//!
//! A real Weir broker (`weir_broker::Broker`), on 127.0.0.1 with its data in a temporary
//! directory (or `--data-dir`), so `cargo run -p <demo>` needs nothing else running.
//! Groups start at once (no initial rebalance delay) and accept short session timeouts, so a
//! killed service's partitions move in about a second.

use std::net::SocketAddr;
use std::path::PathBuf;

use weir_broker::{Broker, BrokerConfig, RunningBroker};

use crate::{Error, Result};

/// A running embedded broker and the directory it keeps its data in.
#[derive(Debug)]
pub struct Embedded {
    /// The broker.
    broker: RunningBroker,
    /// Removed on drop when the demo chose a temporary directory.
    _temp: Option<tempfile::TempDir>,
}

impl Embedded {
    /// Starts a broker on `listen` with data in `data_dir` (a temporary directory if `None`).
    ///
    /// # Errors
    /// The directory cannot be created, or the broker does not start.
    pub async fn start(listen: SocketAddr, data_dir: Option<PathBuf>) -> Result<Self> {
        let (dir, temp) = match data_dir {
            Some(dir) => (dir, None),
            None => {
                let temp = tempfile::tempdir().map_err(Error::TempDir)?;
                (temp.path().to_owned(), Some(temp))
            }
        };
        let mut config = BrokerConfig::for_tests(dir);
        config.listen = listen;
        config.group_initial_rebalance_delay_ms = 0;
        config.group_min_session_timeout_ms = 1_000;
        let broker = Broker::new(config).start().await?;
        Ok(Self {
            broker,
            _temp: temp,
        })
    }

    /// Where clients connect.
    pub fn addr(&self) -> SocketAddr {
        self.broker.addr()
    }

    /// Stops the broker cleanly.
    ///
    /// # Errors
    /// The broker's shutdown failure.
    pub async fn shutdown(self) -> Result<()> {
        Ok(self.broker.shutdown().await?)
    }
}
