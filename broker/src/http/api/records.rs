//! `/v1/topics/{topic}/partitions/{partition}/records`: a page of a partition's records from
//! an offset (`?offset=N`), from a time (`?timestamp=T`, the first record at or after it, as
//! ListOffsets finds it) or from the log start, with `?limit=` records at most and
//! `?max_bytes=` bytes of keys, values and headers at most.
//!
//! Reads through [`PartitionLog::read`] like a fetch: whole verified batches below the high
//! watermark, no lock. Control batches (transaction markers) are skipped as consumers skip
//! them. A compressed batch is decompressed when this build has its codec; otherwise it is
//! listed under `compressed_batches` with its codec and offsets instead of its records, and
//! the page goes on after it.
//!
//! Bounds: at most [`MAX_LIMIT`] records, [`MAX_BYTES`] bytes of record data (the first
//! record is cut to fit rather than left out), [`SCAN_BYTES_MAX`] bytes of batches walked
//! and [`DECOMPRESSED_MAX`] bytes per decompressed batch.

use axum::Json;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use serde::{Deserialize, Serialize};
use weir_protocol::compression::decompress;
use weir_protocol::record_batch::{
    BatchError, BatchHeader, Compression, HEADER_LEN, Record, Records, TimestampType,
};

use super::data::Data;
use super::{ApiError, ApiState};
use crate::log::{LogError, Offset, PartitionLog};

/// Records per page when `limit` is not given.
pub(crate) const DEFAULT_LIMIT: usize = 50;
/// Most records one page may ask for.
pub(crate) const MAX_LIMIT: usize = 500;
/// Bytes of record data per page when `max_bytes` is not given.
pub(crate) const DEFAULT_MAX_BYTES: usize = 256 * 1024;
/// Most bytes of record data one page may ask for.
pub(crate) const MAX_BYTES: usize = 4 << 20;
/// Bytes asked of the log per read, as one fetch would.
const READ_BYTES: usize = 1 << 20;
/// Bytes of batches one page may walk, skipped or compressed ones included.
const SCAN_BYTES_MAX: usize = 16 << 20;
/// Largest batch decompressed for a page.
const DECOMPRESSED_MAX: usize = 8 << 20;

/// The query string.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RecordsQuery {
    offset: Option<i64>,
    timestamp: Option<i64>,
    limit: Option<usize>,
    max_bytes: Option<usize>,
}

/// One header of a record.
#[derive(Debug, Serialize)]
pub(crate) struct HeaderOut {
    key: String,
    value: Option<Data>,
}

/// One record.
#[derive(Debug, Serialize)]
pub(crate) struct RecordOut {
    offset: i64,
    timestamp: i64,
    timestamp_type: &'static str,
    key: Option<Data>,
    value: Option<Data>,
    headers: Vec<HeaderOut>,
}

/// A compressed batch this build cannot open.
#[derive(Debug, Serialize)]
pub(crate) struct CompressedBatch {
    base_offset: i64,
    last_offset: i64,
    codec: &'static str,
    records: i32,
    reason: String,
}

/// One page of records.
#[derive(Debug, Serialize)]
pub(crate) struct RecordsPage {
    topic: String,
    partition: i32,
    log_start_offset: i64,
    high_watermark: i64,
    /// Where the page started: the offset asked for, or the one the timestamp found.
    start_offset: i64,
    /// Where the next page starts.
    next_offset: i64,
    records: Vec<RecordOut>,
    compressed_batches: Vec<CompressedBatch>,
    /// The byte budget stopped the page or cut a record's data.
    truncated: bool,
}

/// Whether the walk goes on after a batch.
enum Walk {
    More,
    Full,
}

/// What one page has gathered, and what it may still take.
struct Page {
    limit: usize,
    budget: usize,
    out: RecordsPage,
}

pub(super) async fn records(
    State(state): State<ApiState>,
    Path((topic, partition)): Path<(String, String)>,
    query: Result<Query<RecordsQuery>, QueryRejection>,
) -> Result<Json<RecordsPage>, ApiError> {
    let Query(query) = query.map_err(|rejection| ApiError::BadQuery(rejection.body_text()))?;
    let limit = bounded("limit", query.limit, DEFAULT_LIMIT, MAX_LIMIT)?;
    let max_bytes = bounded("max_bytes", query.max_bytes, DEFAULT_MAX_BYTES, MAX_BYTES)?;
    if query.offset.is_some() && query.timestamp.is_some() {
        return Err(ApiError::BadQuery(
            "give offset or timestamp, not both".to_owned(),
        ));
    }
    let index: i32 = partition.parse().map_err(|_not_a_number| {
        ApiError::BadQuery(format!("partition {partition:?} is not a partition number"))
    })?;
    state
        .read(move |ctx| {
            let found = ctx
                .catalog
                .get(&topic)
                .ok_or(ApiError::NoTopic(topic.clone()))?;
            let log = found
                .log(index)
                .ok_or_else(|| ApiError::NoPartition {
                    topic: topic.clone(),
                    partition,
                })?
                .clone();
            let start = match (query.offset, query.timestamp) {
                (Some(offset), _) => Offset(offset),
                (None, Some(ts)) => log
                    .offset_for_timestamp(ts)
                    .unwrap_or_else(|| log.high_watermark()),
                (None, None) => log.log_start_offset(),
            };
            let mut page = Page {
                limit,
                budget: max_bytes,
                out: RecordsPage {
                    topic,
                    partition: index,
                    log_start_offset: log.log_start_offset().0,
                    high_watermark: log.high_watermark().0,
                    start_offset: start.0,
                    next_offset: start.0,
                    records: Vec::new(),
                    compressed_batches: Vec::new(),
                    truncated: false,
                },
            };
            page.fill(&log)?;
            Ok(page.out)
        })
        .await
}

/// `given` or `default`, refused outside `1..=max`.
fn bounded(
    name: &str,
    given: Option<usize>,
    default: usize,
    max: usize,
) -> Result<usize, ApiError> {
    match given {
        None => Ok(default),
        Some(n) if (1..=max).contains(&n) => Ok(n),
        Some(n) => Err(ApiError::BadQuery(format!(
            "{name}={n} is outside 1..={max}"
        ))),
    }
}

fn bad_batch(err: BatchError) -> ApiError {
    ApiError::Log(LogError::InvalidBatch(err))
}

fn codec_name(codec: Compression) -> &'static str {
    match codec {
        Compression::None => "none",
        Compression::Gzip => "gzip",
        Compression::Snappy => "snappy",
        Compression::Lz4 => "lz4",
        Compression::Zstd => "zstd",
    }
}

impl Page {
    /// Reads from `next_offset` until the page is full, the log ends or the scan bound.
    fn fill(&mut self, log: &PartitionLog) -> Result<(), ApiError> {
        let mut scanned = 0usize;
        while self.out.records.len() < self.limit && scanned < SCAN_BYTES_MAX {
            let read = log.read(Offset(self.out.next_offset), READ_BYTES)?;
            self.out.high_watermark = read.high_watermark.0;
            self.out.log_start_offset = read.log_start_offset.0;
            if read.records.is_empty() {
                break;
            }
            scanned = scanned.saturating_add(read.records.len());
            let mut rest = &read.records[..];
            while !rest.is_empty() {
                let header = BatchHeader::parse(rest).map_err(bad_batch)?;
                let len = header.total_len().map_err(bad_batch)?;
                let (batch, after) = rest.split_at(len.min(rest.len()));
                rest = after;
                if let Walk::Full = self.batch(batch, &header)? {
                    return Ok(());
                }
            }
        }
        Ok(())
    }

    /// Takes the records of one batch at or after `next_offset`.
    fn batch(&mut self, batch: &[u8], header: &BatchHeader) -> Result<Walk, ApiError> {
        if header.attributes.is_control() || header.next_offset() <= self.out.next_offset {
            self.out.next_offset = self.out.next_offset.max(header.next_offset());
            return Ok(Walk::More);
        }
        let codec = header.attributes.compression().map_err(bad_batch)?;
        let decompressed;
        let records = if codec == Compression::None {
            Records::new(batch).map_err(bad_batch)?
        } else {
            let compressed = batch.get(HEADER_LEN..).unwrap_or_default();
            match decompress(codec, compressed, DECOMPRESSED_MAX) {
                Ok(raw) => {
                    decompressed = raw;
                    Records::from_raw(&decompressed, header.records_count)
                }
                Err(err) => {
                    self.out.compressed_batches.push(CompressedBatch {
                        base_offset: header.base_offset,
                        last_offset: header.last_offset(),
                        codec: codec_name(codec),
                        records: header.records_count,
                        reason: err.to_string(),
                    });
                    self.out.next_offset = header.next_offset();
                    return Ok(Walk::More);
                }
            }
        };
        for record in records {
            let record = record.map_err(bad_batch)?;
            let offset = record.offset(header.base_offset);
            if offset < self.out.next_offset {
                continue;
            }
            if self.out.records.len() >= self.limit {
                return Ok(Walk::Full);
            }
            let cost = record_bytes(&record);
            if !self.out.records.is_empty() && cost > self.budget {
                self.out.truncated = true;
                return Ok(Walk::Full);
            }
            let out = self.take(&record, header, offset);
            self.out.records.push(out);
            self.out.next_offset = offset.saturating_add(1);
        }
        // Offsets the batch covers past its last record (compaction leaves such gaps).
        self.out.next_offset = self.out.next_offset.max(header.next_offset());
        Ok(Walk::More)
    }

    /// One record, its data cut to what is left of the budget.
    fn take(&mut self, record: &Record<'_>, header: &BatchHeader, offset: i64) -> RecordOut {
        // Only the first record of a page can be larger than what is left: it is cut.
        self.out.truncated |= record_bytes(record) > self.budget;
        let mut shown = |bytes: &[u8]| {
            let data = Data::new(bytes, self.budget);
            self.budget = self.budget.saturating_sub(bytes.len());
            data
        };
        let key = record.key.map(&mut shown);
        let value = record.value.map(&mut shown);
        let headers = record
            .headers
            .iter()
            .map(|h| HeaderOut {
                key: String::from_utf8_lossy(h.key).into_owned(),
                value: h.value.map(&mut shown),
            })
            .collect();
        let (timestamp, timestamp_type) = match header.attributes.timestamp_type() {
            TimestampType::CreateTime => (record.timestamp(header.base_timestamp), "CreateTime"),
            TimestampType::LogAppendTime => (header.max_timestamp, "LogAppendTime"),
        };
        RecordOut {
            offset,
            timestamp,
            timestamp_type,
            key,
            value,
            headers,
        }
    }
}

/// Bytes of a record's key, value and headers.
fn record_bytes(record: &Record<'_>) -> usize {
    let headers: usize = record
        .headers
        .iter()
        .map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len))
        .sum();
    record.key.map_or(0, <[u8]>::len) + record.value.map_or(0, <[u8]>::len) + headers
}
