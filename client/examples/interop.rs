//! `interop`: a minimal command-line front end to weir-client, for the interoperability tests
//! with other clients (tests/compat/test_client_interop.py): records written by weir-client
//! must read back identically in confluent-kafka and kafka-python, and the reverse.
//!
//! ```text
//! interop produce <bootstrap> <topic> <file>
//! interop consume <bootstrap> <topic> <partitions> <count>
//! ```
//!
//! `produce` reads `<file>` as lines `key<TAB>value` (split at the first tab; an empty key is
//! no key, a line without a tab is an error) and produces them with the default producer
//! (acks=all, idempotent, partition chosen by the key, sticky for unkeyed records). Once
//! every record is acknowledged it prints `partition offset` per record, in input order.
//!
//! `consume` assigns partitions `0..<partitions>` of `<topic>` without a group, from the
//! beginning, reads `<count>` records, checks that one more short poll brings nothing, and
//! prints them sorted by (partition, offset), one per line:
//! `partition<TAB>offset<TAB>key<TAB>value<TAB>headers`, where headers are `k=v` joined by
//! commas (`k` alone for a null value). Keys, values and header parts are printed as bytes:
//! printable ASCII as is, anything else and the separators `\`, tab, `,` and `=` as `\xNN`.
//! A null key or value prints as an empty field.
//!
//! Any failure (usage, I/O, delivery, timeout, too many records) goes to stderr with exit
//! status 1.

use std::collections::BTreeMap;
use std::error::Error;
use std::io::Write;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use weir_client::producer::{Producer, ProducerConfig, ProducerRecord};
use weir_client::{
    ClientConfig, Consumer, ConsumerConfig, ConsumerRecord, OffsetReset, TopicPartition,
};

const USAGE: &str = "usage: interop produce <bootstrap> <topic> <file>\n       \
                     interop consume <bootstrap> <topic> <partitions> <count>";

/// How long `consume` waits for `<count>` records in all.
const CONSUME_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the final poll waits to show that nothing beyond `<count>` is there.
const EXTRA_POLL: Duration = Duration::from_millis(300);

type BoxError = Box<dyn Error + Send + Sync>;

/// One input line: the key (`None` for an empty one) and the value.
type Line = (Option<Vec<u8>>, Vec<u8>);

#[tokio::main]
async fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("interop: {err}");
            let mut source = err.source();
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::FAILURE
        }
    }
}

async fn run(args: &[String]) -> Result<(), BoxError> {
    match args {
        [mode, bootstrap, topic, file] if mode == "produce" => {
            produce(bootstrap, topic, file).await
        }
        [mode, bootstrap, topic, partitions, count] if mode == "consume" => {
            let partitions: i32 = partitions
                .parse()
                .map_err(|err| format!("<partitions> {partitions:?}: {err}\n{USAGE}"))?;
            let count: usize = count
                .parse()
                .map_err(|err| format!("<count> {count:?}: {err}\n{USAGE}"))?;
            consume(bootstrap, topic, partitions, count).await
        }
        _ => Err(USAGE.into()),
    }
}

/// Splits the file into (key, value) records: one line each, split at the first tab.
fn parse_lines(data: &[u8]) -> Result<Vec<Line>, BoxError> {
    let data = data.strip_suffix(b"\n").unwrap_or(data);
    if data.is_empty() {
        return Ok(Vec::new());
    }
    data.split(|&b| b == b'\n')
        .enumerate()
        .map(|(i, line)| {
            let tab = line
                .iter()
                .position(|&b| b == b'\t')
                .ok_or_else(|| format!("line {}: no tab between key and value", i + 1))?;
            let (key, value) = (&line[..tab], &line[tab + 1..]);
            let key = (!key.is_empty()).then(|| key.to_vec());
            Ok((key, value.to_vec()))
        })
        .collect()
}

async fn produce(bootstrap: &str, topic: &str, file: &str) -> Result<(), BoxError> {
    let data = std::fs::read(file).map_err(|err| format!("reading {file}: {err}"))?;
    let records = parse_lines(&data)?;
    let producer = Producer::new(ProducerConfig::new([bootstrap]))?;
    let mut deliveries = Vec::with_capacity(records.len());
    for (key, value) in records {
        let mut record = ProducerRecord::new(topic, value);
        if let Some(key) = key {
            record = record.key(key);
        }
        deliveries.push(producer.send(record).await?);
    }
    let mut written = Vec::with_capacity(deliveries.len());
    for delivery in deliveries {
        written.push(delivery.await?);
    }
    producer.close().await?;
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for meta in written {
        writeln!(out, "{} {}", meta.partition, meta.offset)?;
    }
    out.flush()?;
    Ok(())
}

async fn consume(
    bootstrap: &str,
    topic: &str,
    partitions: i32,
    count: usize,
) -> Result<(), BoxError> {
    let mut consumer = Consumer::new(
        ConsumerConfig::new(ClientConfig::new([bootstrap]))
            .auto_offset_reset(OffsetReset::Earliest),
    );
    consumer.assign((0..partitions).map(|p| TopicPartition::new(topic, p)))?;
    let mut got: BTreeMap<(i32, i64), ConsumerRecord> = BTreeMap::new();
    let mut add = |records: Vec<ConsumerRecord>| -> Result<(), BoxError> {
        for record in records {
            let at = (record.partition, record.offset);
            if got.insert(at, record).is_some() {
                return Err(format!("partition {} offset {} returned twice", at.0, at.1).into());
            }
        }
        Ok(())
    };
    let deadline = Instant::now() + CONSUME_TIMEOUT;
    let mut total = 0;
    while total < count {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(
                format!("timed out after {CONSUME_TIMEOUT:?}: {total} of {count} records").into(),
            );
        }
        let records = consumer.poll(left.min(Duration::from_secs(1))).await?;
        total += records.len();
        add(records)?;
    }
    let extra = consumer.poll(EXTRA_POLL).await?;
    total += extra.len();
    add(extra)?;
    if total > count {
        return Err(format!("expected {count} records, got at least {total}").into());
    }
    consumer.close().await?;

    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for record in got.values() {
        let headers: Vec<String> = record
            .headers
            .iter()
            .map(|h| match &h.value {
                Some(v) => format!("{}={}", escape(h.key.as_bytes()), escape(v)),
                None => escape(h.key.as_bytes()),
            })
            .collect();
        writeln!(
            out,
            "{}\t{}\t{}\t{}\t{}",
            record.partition,
            record.offset,
            escape(record.key.as_deref().unwrap_or_default()),
            escape(record.value.as_deref().unwrap_or_default()),
            headers.join(",")
        )?;
    }
    out.flush()?;
    Ok(())
}

/// Printable ASCII as is, except `\`, `,` and `=`; everything else as `\xNN`.
fn escape(bytes: &[u8]) -> String {
    let mut s = String::with_capacity(bytes.len());
    for &b in bytes {
        if (0x20..0x7f).contains(&b) && !matches!(b, b'\\' | b',' | b'=') {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s
}
