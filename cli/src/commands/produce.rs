//! `weir produce`: one record per input line. A thread reads the input (stdin or a file) in
//! chunks through a bounded channel, the command sends each record, and a task awaits the
//! deliveries in order and counts the failures; the summary goes to stderr and any failed
//! record makes the exit code non-zero.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::mpsc;
use weir_client::producer::{Acks, Compression};
use weir_client::protocol::error_code::ErrorCode;
use weir_client::{DeliveryFuture, Producer, ProducerConfig, ProducerRecord};

use super::Context;
use super::topics::split_pair;
use crate::args::{AcksArg, CompressionArg, ProduceArgs, RECORD_BYTES_MAX};
use crate::error::{CliError, CliResult};
use crate::health::{Health, PROBE_AFTER, Probe, Reporter};
use crate::output::note;

/// Lines handed from the reading thread to the sender at once (fewer channel operations).
const LINES_PER_CHUNK: usize = 1024;
/// Chunks waiting between the reader and the sender: a bound on memory when the broker is
/// slower than the input.
const CHUNKS_QUEUED: usize = 8;
/// Deliveries awaited behind the sends; the producer's own buffer bounds the bytes.
const DELIVERIES_QUEUED: usize = 1 << 16;
/// The producer's buffer memory (its default), raised to hold one record of
/// `--max-record-bytes` when that is larger.
const BUFFER_BYTES: usize = 32 << 20;

/// Runs `weir produce`.
///
/// # Errors
/// Unreachable broker, bad input, records not delivered, or Ctrl-C before the end.
pub(crate) async fn run(ctx: &Context, args: ProduceArgs) -> CliResult {
    let headers = parse_headers(&args.headers)?;
    let input: Box<dyn Read + Send> = match &args.file {
        Some(path) => Box::new(File::open(path).map_err(|source| CliError::Io {
            context: format!("cannot open {}", path.display()),
            source,
        })?),
        None => Box::new(std::io::stdin()),
    };
    // Asking for the topic first fails fast when no broker answers (the producer would retry
    // until its delivery timeout) and creates the topic on a broker that auto-creates.
    let cluster = weir_client::Cluster::new(ctx.client_config().allow_auto_create_topics(true));
    let topic = cluster.topic(&args.topic).await.map_err(|e| {
        if e.code() == Some(ErrorCode::UnknownTopicOrPartition) {
            CliError::Refused(format!(
                "topic {0} does not exist and the broker did not create it (its automatic \
                 topic creation is off: auto_create_topics in Weir, auto.create.topics.enable \
                 in Kafka); create it with `weir topics create {0}`",
                args.topic
            ))
        } else {
            ctx.err(e)
        }
    })?;
    if let Some(p) = args.partition {
        if !topic.partitions.iter().any(|info| info.partition == p) {
            return Err(CliError::Usage(format!(
                "topic {} has no partition {p} (it has {})",
                args.topic,
                topic.partitions.len()
            )));
        }
    }
    let config = producer_config(ctx, args.acks, args.compression)
        .max_request_size(args.max_record_bytes)
        // Room for at least one record of the largest size.
        .buffer_memory(BUFFER_BYTES.max(args.max_record_bytes));
    let producer = Producer::with_cluster(config, cluster).map_err(|e| ctx.err(e))?;

    let (lines_tx, mut lines) = mpsc::channel(CHUNKS_QUEUED);
    let line_max = RECORD_BYTES_MAX.max(args.max_record_bytes);
    std::thread::spawn(move || {
        read_lines(
            BufReader::with_capacity(1 << 16, input),
            line_max,
            &lines_tx,
        );
    });
    let (deliveries_tx, deliveries) = mpsc::channel(DELIVERIES_QUEUED);
    let progress = Arc::new(Progress::default());
    let collector = tokio::spawn(collect(deliveries, Arc::clone(&progress)));
    let retrying = format!(
        "retrying until each record's delivery timeout ({} s)",
        producer.config().delivery_timeout.as_secs()
    );
    let watchdog = tokio::spawn(watch(
        Probe::new(&ctx.client_config(), std::slice::from_ref(&args.topic)),
        Reporter::new(retrying),
        Arc::clone(&progress),
    ));

    let started = Instant::now();
    let mut tally = Tally::default();
    let mut outcome = Ok(());
    let key_separator = args.key_separator.as_deref().map(str::as_bytes);
    'input: loop {
        let chunk = tokio::select! {
            chunk = lines.recv() => chunk,
            () = ctx.shutdown.requested() => { outcome = Err(CliError::Interrupted); break }
        };
        let chunk = match chunk {
            None => break,
            Some(Ok(chunk)) => chunk,
            Some(Err(err)) => {
                outcome = Err(err);
                break;
            }
        };
        for line in chunk {
            let mut record = to_record(&args.topic, line, key_separator);
            if args.null_empty {
                record = empty_as_null(record);
            }
            record.partition = args.partition;
            record.headers.clone_from(&headers);
            tally.sent += 1;
            progress.sent.fetch_add(1, Ordering::Relaxed);
            match producer.send(record).await {
                Ok(delivery) => {
                    if deliveries_tx.send(delivery).await.is_err() {
                        break 'input;
                    }
                }
                Err(err) => {
                    progress.answered.fetch_add(1, Ordering::Relaxed);
                    tally.fail(err.to_string());
                }
            }
        }
    }
    drop(deliveries_tx);
    // Close delivers everything accepted; its failures are the ones the collector counts.
    let closed = producer.close().await;
    let delivered = collector.await.unwrap_or_default();
    watchdog.abort();
    tally.failed += delivered.failed;
    if tally.first_error.is_none() {
        tally.first_error = delivered.first_error;
    }
    if let (Err(err), 0) = (&closed, tally.failed) {
        tally.failed = err.failed_records;
        tally.first_error = Some(err.to_string());
    }
    let seconds = started.elapsed().as_secs_f64();
    let ok = tally.sent.saturating_sub(tally.failed);
    note!(
        "produced {ok} records to {} in {seconds:.2} s{}",
        args.topic,
        if tally.failed > 0 {
            format!(" ({} failed)", tally.failed)
        } else {
            String::new()
        }
    );
    outcome?;
    if tally.failed > 0 {
        return Err(CliError::Undelivered {
            failed: tally.failed,
            total: tally.sent,
            first: tally.first_error.unwrap_or_default(),
        });
    }
    Ok(())
}

/// Producer settings for a command-line producer: the chosen acks and compression, with
/// idempotence where Kafka allows it (acks=all).
pub(crate) fn producer_config(
    ctx: &Context,
    acks: AcksArg,
    compression: CompressionArg,
) -> ProducerConfig {
    let acks = match acks {
        AcksArg::Zero => Acks::None,
        AcksArg::One => Acks::Leader,
        AcksArg::All => Acks::All,
    };
    // The producer asks brokers to create missing topics by default, as kcat's does.
    ProducerConfig::from(ctx.client_config())
        .acks(acks)
        .idempotence(acks == Acks::All)
        .compression(compression_of(compression))
}

/// The client's compression for the flag.
pub(crate) fn compression_of(c: CompressionArg) -> Compression {
    match c {
        CompressionArg::None => Compression::None,
        CompressionArg::Gzip => Compression::Gzip,
        CompressionArg::Snappy => Compression::Snappy,
        CompressionArg::Lz4 => Compression::Lz4,
        CompressionArg::Zstd => Compression::Zstd,
    }
}

fn parse_headers(headers: &[String]) -> CliResult<Vec<(Bytes, Option<Bytes>)>> {
    headers
        .iter()
        .map(|h| {
            let (k, v) = split_pair(h, "--header")?;
            Ok((
                Bytes::copy_from_slice(k.as_bytes()),
                Some(Bytes::copy_from_slice(v.as_bytes())),
            ))
        })
        .collect()
}

/// A line as a record: split at the first `separator` into key and value when one is given
/// and present.
fn to_record(topic: &str, line: Vec<u8>, separator: Option<&[u8]>) -> ProducerRecord {
    if let Some(sep) = separator.filter(|s| !s.is_empty()) {
        if let Some(at) = line.windows(sep.len()).position(|w| w == sep) {
            let line = Bytes::from(line);
            return ProducerRecord::new(topic, line.slice(at + sep.len()..)).key(line.slice(..at));
        }
    }
    ProducerRecord::new(topic, line)
}

/// `-Z`: an empty value becomes a null one (a tombstone), as kcat does.
fn empty_as_null(mut record: ProducerRecord) -> ProducerRecord {
    if record.value.as_ref().is_some_and(Bytes::is_empty) {
        record.value = None;
    }
    record
}

/// Reads lines (without their `\n`) and sends them in chunks until the input ends or the
/// receiver is gone. A chunk also goes as soon as the input has nothing more buffered, so
/// lines typed or trickling in are sent at once rather than when the input ends. A line
/// longer than `line_max` ends the input with an error.
fn read_lines<R: Read>(
    mut input: BufReader<R>,
    line_max: usize,
    out: &mpsc::Sender<CliResult<Vec<Vec<u8>>>>,
) {
    let mut chunk = Vec::with_capacity(LINES_PER_CHUNK);
    let mut line_number = 0u64;
    loop {
        let mut line = Vec::new();
        let limit = u64::try_from(line_max)
            .unwrap_or(u64::MAX)
            .saturating_add(1);
        match (&mut input).take(limit).read_until(b'\n', &mut line) {
            Ok(0) => break,
            Ok(_) => {}
            Err(source) => {
                // Nobody is left to tell when the receiver is gone.
                drop(out.blocking_send(Err(CliError::Io {
                    context: "reading the input".to_owned(),
                    source,
                })));
                return;
            }
        }
        line_number += 1;
        if line.last() == Some(&b'\n') {
            line.pop();
        } else if line.len() > line_max {
            drop(out.blocking_send(Err(CliError::Usage(format!(
                "input line {line_number} is longer than {line_max} bytes"
            )))));
            return;
        }
        chunk.push(line);
        if (chunk.len() == LINES_PER_CHUNK || input.buffer().is_empty())
            && out
                .blocking_send(Ok(std::mem::replace(
                    &mut chunk,
                    Vec::with_capacity(LINES_PER_CHUNK),
                )))
                .is_err()
        {
            return;
        }
    }
    if !chunk.is_empty() {
        drop(out.blocking_send(Ok(chunk)));
    }
}

/// Sent and failed records, and the first reason.
#[derive(Debug, Default)]
struct Tally {
    sent: u64,
    failed: u64,
    first_error: Option<String>,
}

impl Tally {
    fn fail(&mut self, reason: String) {
        self.failed += 1;
        self.first_error.get_or_insert(reason);
    }
}

async fn collect(mut deliveries: mpsc::Receiver<DeliveryFuture>, progress: Arc<Progress>) -> Tally {
    let mut tally = Tally::default();
    while let Some(delivery) = deliveries.recv().await {
        let outcome = delivery.await;
        progress.answered.fetch_add(1, Ordering::Relaxed);
        if let Err(err) = outcome {
            tally.fail(err.to_string());
        }
    }
    tally
}

/// Records sent and answered (delivered or failed), for the watchdog.
#[derive(Debug, Default)]
struct Progress {
    sent: AtomicU64,
    answered: AtomicU64,
}

/// How often the watchdog looks at the progress.
const WATCH_TICK: Duration = Duration::from_millis(250);

/// Says on stderr when records wait for an answer for [`PROBE_AFTER`] and the cluster shows
/// why (the producer retries by itself, silently, until each record's delivery timeout),
/// and when answers come again. Runs until aborted.
async fn watch(probe: Probe, mut reporter: Reporter, progress: Arc<Progress>) {
    let mut answered = 0;
    let mut moved = Instant::now();
    let mut next_probe = Instant::now();
    let mut tick = tokio::time::interval(WATCH_TICK);
    loop {
        tick.tick().await;
        let now = Instant::now();
        let answered_now = progress.answered.load(Ordering::Relaxed);
        if answered_now != answered {
            answered = answered_now;
            moved = now;
            if let Some(line) = reporter.observe(Health::Fine) {
                note!("{line}");
            }
            continue;
        }
        let waiting = progress.sent.load(Ordering::Relaxed) > answered;
        if waiting && now >= moved + PROBE_AFTER && now >= next_probe {
            if let Some(line) = reporter.observe(probe.check().await) {
                note!("{line}");
            }
            next_probe = Instant::now() + PROBE_AFTER;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_value_is_null_with_z() {
        let r = empty_as_null(to_record("t", b"k:".to_vec(), Some(b":")));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value, None);
        let r = empty_as_null(to_record("t", b"k:v".to_vec(), Some(b":")));
        assert_eq!(r.value.as_deref(), Some(&b"v"[..]));
    }

    #[test]
    fn a_key_separator_splits_at_its_first_occurrence() {
        let r = to_record("t", b"k:v:w".to_vec(), Some(b":"));
        assert_eq!(r.key.as_deref(), Some(&b"k"[..]));
        assert_eq!(r.value.as_deref(), Some(&b"v:w"[..]));
        let r = to_record("t", b"no-separator".to_vec(), Some(b"::"));
        assert_eq!(r.key, None);
        assert_eq!(r.value.as_deref(), Some(&b"no-separator"[..]));
    }

    #[test]
    fn lines_are_read_exactly_and_an_overlong_one_is_refused() {
        let (tx, mut rx) = mpsc::channel(64);
        read_lines(
            BufReader::new(&b"a\n\nb\r\nlast"[..]),
            RECORD_BYTES_MAX,
            &tx,
        );
        drop(tx);
        let mut lines = Vec::new();
        while let Ok(chunk) = rx.try_recv() {
            lines.extend(chunk.expect("no error"));
        }
        assert_eq!(
            lines,
            vec![b"a".to_vec(), vec![], b"b\r".to_vec(), b"last".to_vec()]
        );

        let (tx, mut rx) = mpsc::channel(64);
        let long = vec![b'x'; RECORD_BYTES_MAX + 1];
        read_lines(BufReader::new(&long[..]), RECORD_BYTES_MAX, &tx);
        drop(tx);
        let err = rx.try_recv().expect("an answer").expect_err("too long");
        assert!(err.to_string().contains("line 1 is longer"), "{err}");
    }

    #[test]
    fn headers_need_a_key() {
        assert!(parse_headers(&["a=b".to_owned(), "c=".to_owned()]).is_ok());
        assert!(parse_headers(&["=b".to_owned()]).is_err());
        assert!(parse_headers(&["nothing".to_owned()]).is_err());
    }
}
