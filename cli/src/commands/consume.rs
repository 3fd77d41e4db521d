//! `weir consume`: records of one or more topics printed one per line, from explicit
//! positions (`assign`) or as a member of a group (`subscribe`). It stops after `--count`
//! records, at the end offsets taken when it started (`--exit-at-end`), on Ctrl-C, or when
//! stdout is closed; a group member then commits what it printed and leaves the group. When
//! the reader of stdout goes away, "printed" means the lines the reader took out of the pipe
//! (see `record_output.rs`), not merely those handed to the OS.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use weir_client::{Admin, Consumer, ConsumerConfig, OffsetReset, TopicPartition};

use super::Context;
use super::topics::offsets;
use crate::args::{ConsumeArgs, Start};
use crate::error::{CliError, CliResult};
use crate::health::{Health, PROBE_AFTER, Probe, Reporter};
use crate::output::{note, stdout_error};
use crate::record_output::{Destination, RecordOutput, Stdout, Stop};
use crate::start::resolve;

/// How long one poll waits: also how long Ctrl-C may take to be noticed.
const POLL_WAIT: Duration = Duration::from_millis(200);

/// Runs `weir consume`.
///
/// # Errors
/// Unreachable broker, unknown topic or partition, a failing consumer, or output errors.
pub(crate) async fn run(ctx: &Context, args: ConsumeArgs) -> CliResult {
    if args.group.is_some() && !matches!(args.offset, Start::Beginning | Start::End) {
        return Err(CliError::Usage(
            "in a group, --offset is beginning or end (where partitions without a committed \
             offset start); move the group with `weir groups reset-offsets`"
                .to_owned(),
        ));
    }
    let cluster = ctx.cluster();
    let admin = Admin::with_cluster(cluster.clone());
    let names: Vec<&str> = args.topic.iter().map(String::as_str).collect();
    // Fails fast, in one line, when no broker answers or a topic does not exist.
    let topics = admin
        .describe_topics(&names)
        .await
        .map_err(|e| ctx.err(e))?;
    let mut partitions = Vec::new();
    for t in &topics {
        for p in &args.partition {
            if !t.partitions.iter().any(|info| info.partition == *p) {
                return Err(CliError::Usage(format!(
                    "topic {} has no partition {p} (it has {})",
                    t.name,
                    t.partitions.len()
                )));
            }
        }
        partitions.extend(
            t.partitions
                .iter()
                .filter(|info| {
                    args.partition.is_empty() || args.partition.contains(&info.partition)
                })
                .map(|info| TopicPartition::new(&t.name, info.partition)),
        );
    }
    let ends = if args.exit_at_end {
        let all: Vec<(String, i32)> = partitions
            .iter()
            .map(|tp| (tp.topic.clone(), tp.partition))
            .collect();
        offsets(&cluster, &all, -1).await.map_err(|e| ctx.err(e))?
    } else {
        BTreeMap::new()
    };

    let mut consumer = start_consumer(ctx, &args, &cluster, &partitions).await?;
    let mut out = RecordOutput::new(Stdout::open().map_err(|source| CliError::Io {
        context: "opening stdout".to_owned(),
        source,
    })?);
    let mut watch = Watch {
        probe: Probe::new(&ctx.client_config(), &args.topic),
        reporter: Reporter::new("retrying"),
        next: Instant::now() + PROBE_AFTER,
    };
    let result = consume(ctx, &args, &mut consumer, &mut out, &ends, &mut watch).await;
    let flushed = match out.flush() {
        Ok(()) | Err(Stop::ReaderGone) => Ok(()),
        Err(Stop::Failed(err)) => Err(stdout_error(err)),
    };
    // What the reader did not take goes back, so that a group commits only what was read.
    for (tp, offset) in out.not_read() {
        // A partition a rebalance took away was committed before it went.
        if consumer.assignment().contains(&tp) {
            consumer.seek(&tp, offset).map_err(|e| ctx.err(e))?;
        }
    }
    let closed = consumer.close().await.map_err(|e| ctx.err(e));
    result?;
    flushed?;
    closed
}

/// A consumer positioned as asked.
async fn start_consumer(
    ctx: &Context,
    args: &ConsumeArgs,
    cluster: &weir_client::Cluster,
    partitions: &[TopicPartition],
) -> CliResult<Consumer> {
    let config = ConsumerConfig::new(ctx.client_config());
    if let Some(group) = &args.group {
        let reset = match args.offset {
            Start::Beginning => OffsetReset::Earliest,
            Start::End => OffsetReset::Latest,
            // Refused in `run` before anything was connected.
            _ => OffsetReset::Fail,
        };
        let mut consumer = Consumer::new(config.group_id(group).auto_offset_reset(reset));
        consumer
            .subscribe(args.topic.iter().cloned())
            .map_err(|e| ctx.err(e))?;
        return Ok(consumer);
    }
    let mut consumer = Consumer::new(config);
    consumer
        .assign(partitions.iter().cloned())
        .map_err(|e| ctx.err(e))?;
    let by_time = match args.offset {
        Start::Timestamp(ts) => {
            let asked: Vec<(String, i32, i64)> = partitions
                .iter()
                .map(|tp| (tp.topic.clone(), tp.partition, ts))
                .collect();
            cluster.list_offsets(&asked).await.map_err(|e| ctx.err(e))?
        }
        _ => BTreeMap::new(),
    };
    // Offsets counted from either end, or checked against it, need both ends.
    let bounds = match args.offset {
        Start::Offset(_) | Start::Skip(_) | Start::BeforeEnd(_) => {
            let all: Vec<(String, i32)> = partitions
                .iter()
                .map(|tp| (tp.topic.clone(), tp.partition))
                .collect();
            let firsts = offsets(cluster, &all, -2).await.map_err(|e| ctx.err(e))?;
            let ends = offsets(cluster, &all, -1).await.map_err(|e| ctx.err(e))?;
            Some((firsts, ends))
        }
        _ => None,
    };
    for tp in partitions {
        let key = (tp.topic.clone(), tp.partition);
        let moved = match args.offset {
            Start::Beginning => consumer.seek_to_beginning(tp),
            Start::End => consumer.seek_to_end(tp),
            Start::Offset(_) | Start::Skip(_) | Start::BeforeEnd(_) => {
                let (firsts, ends) = bounds
                    .as_ref()
                    .unwrap_or_else(|| unreachable!("fetched above"));
                let (Some(&first), Some(&end)) = (firsts.get(&key), ends.get(&key)) else {
                    return Err(CliError::Refused(format!(
                        "no offsets for {tp}: its leader did not answer"
                    )));
                };
                let offset = resolve(args.offset, first, end)
                    .map_err(|why| CliError::Usage(format!("{tp}: {why}")))?;
                if let Start::Offset(n) = args.offset {
                    if n < first {
                        note!(
                            "note: {tp} starts at offset {first} (older records were deleted); \
                             reading from there"
                        );
                    }
                }
                consumer.seek(tp, offset)
            }
            Start::Timestamp(_) => match by_time.get(&key) {
                // No record at or after the timestamp: start at the end.
                Some(Ok(offset)) if *offset >= 0 => consumer.seek(tp, *offset),
                Some(Ok(_)) => consumer.seek_to_end(tp),
                Some(Err(err)) => {
                    return Err(CliError::Refused(format!(
                        "finding the offset of {tp} for the timestamp: {err}"
                    )));
                }
                None => consumer.seek_to_end(tp),
            },
        };
        moved.map_err(|e| ctx.err(e))?;
    }
    Ok(consumer)
}

/// While no records come, the consumer retries failures by itself and says nothing: these
/// probes say it (see `health.rs`).
#[derive(Debug)]
struct Watch {
    probe: Probe,
    reporter: Reporter,
    /// When to probe next if still no records come.
    next: Instant,
}

impl Watch {
    /// Records came: the broker answers.
    fn records_came(&mut self) {
        if let Some(line) = self.reporter.observe(Health::Fine) {
            note!("{line}");
        }
        self.next = Instant::now() + PROBE_AFTER;
    }

    /// No records: probe when it is time. A deleted topic ends the command.
    async fn idle(&mut self) -> CliResult {
        if Instant::now() < self.next {
            return Ok(());
        }
        let health = self.probe.check().await;
        if let Health::TopicsGone(topics) = &health {
            return Err(CliError::Refused(format!(
                "topic {} was deleted while it was being read",
                topics.join(", ")
            )));
        }
        if let Some(line) = self.reporter.observe(health) {
            note!("{line}");
        }
        self.next = Instant::now() + PROBE_AFTER;
        Ok(())
    }
}

/// The poll loop. Records returned by a poll but not printed (past `--count`) are sought
/// back, so that what a group commits on close is exactly what was printed. Returns when
/// done, stopped, or the reader of stdout is gone.
async fn consume<D: Destination>(
    ctx: &Context,
    args: &ConsumeArgs,
    consumer: &mut Consumer,
    out: &mut RecordOutput<D>,
    ends: &BTreeMap<(String, i32), i64>,
    watch: &mut Watch,
) -> CliResult {
    let mut printed = 0u64;
    let limit = args.count.unwrap_or(u64::MAX);
    while printed < limit && !ctx.shutdown.is_requested() {
        let records = match consumer.poll(POLL_WAIT).await {
            Ok(records) => records,
            // The consumer retries these itself (a broker restarting, a leader moving); a
            // follower should outlive them.
            Err(err) if err.is_retriable() => {
                note!("warning: {err} (retrying)");
                continue;
            }
            Err(err) => return Err(ctx.err(err)),
        };
        if !records.is_empty() {
            watch.records_came();
        }
        let mut rewind: HashMap<TopicPartition, i64> = HashMap::new();
        for record in &records {
            if printed >= limit {
                rewind
                    .entry(record.topic_partition())
                    .or_insert(record.offset);
                continue;
            }
            match out.push(record, args.format, &args.key_separator) {
                Ok(()) => printed += 1,
                // The reader went away (`| head`): a normal way to stop.
                Err(Stop::ReaderGone) => return Ok(()),
                Err(Stop::Failed(err)) => return Err(stdout_error(err)),
            }
        }
        for (tp, offset) in rewind {
            consumer.seek(&tp, offset).map_err(|e| ctx.err(e))?;
        }
        // Every poll's lines go out before the next poll (and its auto-commit).
        match out.flush() {
            Ok(()) => {}
            Err(Stop::ReaderGone) => return Ok(()),
            Err(Stop::Failed(err)) => return Err(stdout_error(err)),
        }
        if records.is_empty() {
            // Nothing to write that would show a closed pipe: ask the pipe.
            if out.reader_gone() {
                return Ok(());
            }
            watch.idle().await?;
            if args.exit_at_end && at_end(ctx, consumer, ends).await? {
                break;
            }
        }
    }
    Ok(())
}

/// Whether every assigned partition has been read up to its end offset of the start.
async fn at_end(
    ctx: &Context,
    consumer: &mut Consumer,
    ends: &BTreeMap<(String, i32), i64>,
) -> CliResult<bool> {
    let assigned = consumer.assignment();
    if assigned.is_empty() {
        // A group member between rebalances owns nothing yet.
        return Ok(false);
    }
    for tp in assigned {
        let end = ends
            .get(&(tp.topic.clone(), tp.partition))
            .copied()
            .unwrap_or(0);
        if consumer.position(&tp).await.map_err(|e| ctx.err(e))? < end {
            return Ok(false);
        }
    }
    Ok(true)
}
