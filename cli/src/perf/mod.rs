//! `weir perf produce|consume|e2e`: measured runs against a real broker, in the spirit of
//! Kafka's `kafka-producer-perf-test`. Each prints a [`report::Report`] (text, or JSON with
//! `--json`) and draws a progress line on a terminal meanwhile.
//!
//! - `produce.rs`: the sending side shared by `produce` and `e2e` (rate limit, several
//!   producers, send-to-acknowledgement latency).
//! - `consume.rs`: reading a topic from the beginning, alone or as several group members.
//! - `e2e.rs`: a producer and a tailing consumer; send-to-receipt latency.

mod consume;
mod e2e;
mod histogram;
mod produce;
mod progress;
mod report;

use weir_client::NewTopic;
use weir_client::protocol::error_code::ErrorCode;

use crate::args::PerfCommand;
use crate::commands::Context;
use crate::error::{CliError, CliResult};
use crate::output::{note, print};

/// Runs a perf command.
///
/// # Errors
/// Unreachable broker, records that failed, or Ctrl-C (after printing what was measured).
pub(crate) async fn run(ctx: &Context, command: PerfCommand) -> CliResult {
    let (report, json) = match command {
        PerfCommand::Produce(args) => (produce::run(ctx, &args).await?, args.json),
        PerfCommand::Consume(args) => (consume::run(ctx, &args).await?, args.json),
        PerfCommand::E2e(args) => (e2e::run(ctx, &args).await?, args.json),
    };
    if json {
        print(&format!("{}\n", report.to_json()))?;
    } else {
        print(&report.to_text())?;
    }
    if ctx.shutdown.is_requested() {
        return Err(CliError::Interrupted);
    }
    if report.failed > 0 {
        return Err(CliError::Undelivered {
            failed: report.failed,
            total: report.records + report.failed,
            first: match report.scenario {
                "consume" => "the consumers saw fewer records than expected".to_owned(),
                "e2e" => "the consumer did not see every record sent".to_owned(),
                _ => "the broker did not acknowledge them (see the report)".to_owned(),
            },
        });
    }
    Ok(())
}

/// Creates `topic` with `partitions` unless it exists, and returns its partition count.
async fn ensure_topic(ctx: &Context, topic: &str, partitions: i32) -> CliResult<i32> {
    let admin = ctx.admin();
    match admin
        .create_topics(&[NewTopic::new(topic, partitions)])
        .await
    {
        Ok(()) => {}
        Err(err) if err.code() == Some(ErrorCode::TopicAlreadyExists) => {}
        Err(err) => return Err(ctx.err(err)),
    }
    let described = admin
        .describe_topics(&[topic])
        .await
        .map_err(|e| ctx.err(e))?;
    let count = described.first().map_or(0, |t| t.partitions.len());
    let count = i32::try_from(count).unwrap_or(i32::MAX);
    if count != partitions {
        note!("note: topic {topic} already exists with {count} partitions; using them");
    }
    Ok(count.max(1))
}
