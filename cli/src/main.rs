//! The `weir` command-line tool. Its commands (produce, consume, topics, groups, perf) arrive
//! with the client; until then it only reports its version.

use clap::Parser;

/// Weir command-line tool.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {}

fn main() {
    let _cli = Cli::parse();
    let _ = weir_client::protocol::record_batch::MAGIC_V2;
    eprintln!(
        "weir {}: commands arrive with the client crate; see the README",
        env!("CARGO_PKG_VERSION")
    );
}
