//! Broker-to-broker traffic: the wire format ([`wire`]), the listener ([`server`]), the
//! [`transport::Transport`] seam with its TCP implementation, and an in-process network for
//! tests ([`mem`]).

pub mod mem;
pub mod server;
pub mod transport;
pub mod wire;

pub use transport::{NetError, TcpTransport, Transport};
