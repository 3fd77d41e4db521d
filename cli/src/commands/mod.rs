//! One module per command; this one holds what they share: the broker addresses, the stop
//! flag, and client configuration built from them.

pub(crate) mod cluster;
pub(crate) mod consume;
pub(crate) mod groups;
pub(crate) mod produce;
pub(crate) mod topics;
pub(crate) mod trim;

use std::sync::Arc;

use weir_client::{Admin, ClientConfig, Cluster};

use crate::error::CliError;
use crate::shutdown::Shutdown;

/// What every command gets.
#[derive(Debug, Clone)]
pub(crate) struct Context {
    /// `--bootstrap`.
    pub(crate) bootstrap: Vec<String>,
    /// Set by Ctrl-C.
    pub(crate) shutdown: Shutdown,
}

impl Context {
    /// Client settings for these brokers; the client id names the tool in broker logs and
    /// group descriptions.
    pub(crate) fn client_config(&self) -> ClientConfig {
        ClientConfig::new(self.bootstrap.iter().cloned()).client_id("weir-cli")
    }

    /// A cluster view, shared by the clients of one command.
    pub(crate) fn cluster(&self) -> Arc<Cluster> {
        Cluster::new(self.client_config())
    }

    /// An admin client.
    pub(crate) fn admin(&self) -> Admin {
        Admin::new(self.client_config())
    }

    /// Translates a client error.
    pub(crate) fn err(&self, err: weir_client::Error) -> CliError {
        CliError::client(&self.bootstrap, err)
    }
}
