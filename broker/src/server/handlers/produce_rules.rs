//! A topic's message rules applied to a produced batch before it is appended: Kafka's
//! `max.message.bytes`, `message.timestamp.type`, the KIP-937 timestamp bounds
//! (`message.timestamp.before.max.ms` / `after.max.ms`) and `min.insync.replicas` for
//! `acks=all`.
//!
//! Owns those decisions and the Kafka codes they answer with; appends nothing. The rules come
//! from the partition log's live settings ([`MessageRules`]), so a topic-config change applies
//! to the next request.
//!
//! Invariant: a batch is stamped with the broker's time only after its CRC-32C has been
//! verified, because stamping recomputes the CRC: a batch damaged on the way must be refused,
//! not given a fresh checksum over the damage.

use bytes::Bytes;
use weir_protocol::compression;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{
    Compression, HEADER_LEN, ProducedBatch, ProducedBatchError, Records, stamp_log_append_time,
    verify_batch,
};

use crate::log::cleaner::DECOMPRESSED_BATCH_MAX_BYTES;
use crate::log::{MessageRules, TimestampType};
use crate::server::handlers::Context;
use crate::topics::Partition;

/// A refused batch: the code and the message the client is told.
pub(crate) type Refusal = (ErrorCode, String);

/// Timestamp -1: the producer set none; Kafka does not check it against the bounds.
const NO_TIMESTAMP: i64 = -1;

/// What to append once the rules passed.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// The batch exactly as the producer sent it.
    AsSent,
    /// A copy stamped with the broker's append time (`LogAppendTime` topics).
    Stamped {
        /// The stamped batch.
        bytes: Vec<u8>,
        /// The time written into it, which the produce response reports.
        append_time_ms: i64,
    },
}

/// Applies `rules` to `batch`, produced with `acks`, at broker time `now_ms`, while
/// `in_sync` replicas of the partition are in sync (1 for a partition with one replica).
pub(crate) fn admit(
    rules: &MessageRules,
    acks: i16,
    batch: &ProducedBatch<'_>,
    now_ms: i64,
    in_sync: u32,
) -> Result<Admitted, Refusal> {
    // Kafka refuses acks=all below min.insync.replicas before appending anything.
    if acks == -1 && rules.min_insync_replicas > in_sync {
        return Err((
            ErrorCode::NotEnoughReplicas,
            format!(
                "{in_sync} replica(s) in sync but min.insync.replicas is {}: acks=all \
                 cannot be satisfied",
                rules.min_insync_replicas
            ),
        ));
    }
    let size = batch.bytes().len();
    if size > rules.max_message_bytes as usize {
        return Err((
            ErrorCode::MessageTooLarge,
            format!(
                "the record batch is {size} bytes, more than the topic's max.message.bytes of {}",
                rules.max_message_bytes
            ),
        ));
    }
    match rules.timestamp_type {
        TimestampType::CreateTime => {
            check_timestamps(rules, batch, now_ms)?;
            Ok(Admitted::AsSent)
        }
        TimestampType::LogAppendTime => {
            verify_batch(batch.bytes(), batch.header())
                .map_err(|err| (ErrorCode::CorruptMessage, err.to_string()))?;
            let mut bytes = batch.bytes().to_vec();
            stamp_log_append_time(&mut bytes, now_ms);
            Ok(Admitted::Stamped {
                bytes,
                append_time_ms: now_ms,
            })
        }
    }
}

/// Kafka's CreateTime check: every record's timestamp within
/// `[now - before.max.ms, now + after.max.ms]`, record by record; a compressed batch is
/// decompressed (bounded, as the cleaner does) to read them, and only when the topic sets a
/// bound.
fn check_timestamps(
    rules: &MessageRules,
    batch: &ProducedBatch<'_>,
    now_ms: i64,
) -> Result<(), Refusal> {
    if rules.timestamp_before_max_ms == i64::MAX && rules.timestamp_after_max_ms == i64::MAX {
        return Ok(());
    }
    let earliest = now_ms.saturating_sub(rules.timestamp_before_max_ms);
    let latest = now_ms.saturating_add(rules.timestamp_after_max_ms);
    let check = |index: usize, ts: i64| {
        if ts == NO_TIMESTAMP || (earliest..=latest).contains(&ts) {
            return Ok(());
        }
        Err((
            ErrorCode::InvalidTimestamp,
            format!(
                "timestamp {ts} of record {index} in the batch is out of range: it must be \
                 within [{earliest}, {latest}] (message.timestamp.before.max.ms = {}, \
                 message.timestamp.after.max.ms = {})",
                rules.timestamp_before_max_ms, rules.timestamp_after_max_ms
            ),
        ))
    };
    let header = batch.header();
    let codec = header
        .attributes
        .compression()
        .map_err(|err| (ErrorCode::CorruptMessage, err.to_string()))?;
    let raw = batch.bytes().get(HEADER_LEN..).unwrap_or_default();
    let decompressed;
    let bytes = if codec == Compression::None {
        raw
    } else {
        // Verified first: a damaged batch is CORRUPT_MESSAGE, whatever its timestamps.
        verify_batch(batch.bytes(), header)
            .map_err(|err| (ErrorCode::CorruptMessage, err.to_string()))?;
        decompressed = compression::decompress(codec, raw, DECOMPRESSED_BATCH_MAX_BYTES)
            .map_err(|err| (ErrorCode::CorruptMessage, err.to_string()))?;
        &decompressed[..]
    };
    // A malformed record set is refused by the log's own verification; nothing to add here.
    for (index, record) in Records::from_raw(bytes, header.records_count).enumerate() {
        let Ok(record) = record else {
            return Ok(());
        };
        check(index, record.timestamp(header.base_timestamp))?;
    }
    Ok(())
}

/// A record set that passed every check before the producer table's.
pub(crate) enum Ready<'a> {
    /// The batch as the producer sent it.
    AsSent(ProducedBatch<'a>),
    /// A copy stamped with the broker's time (`LogAppendTime` topics).
    Stamped {
        /// The stamped batch.
        bytes: Vec<u8>,
        /// The time stamped into it.
        at: i64,
    },
}

/// Checks the request's record set: its shape first (Kafka's rule for Produce v3+,
/// [`ProducedBatch::check`]), then that a compacted topic's records have keys, then the
/// topic's message rules ([`produce_rules::admit`], which may stamp it with the broker's
/// time) with `in_sync` replicas in sync.
pub(crate) fn ready<'a>(
    partition: &Partition,
    records: &'a Option<Bytes>,
    acks: i16,
    ctx: &Context,
    in_sync: u32,
) -> Result<Ready<'a>, Refusal> {
    let batch = ProducedBatch::check(records.as_deref().unwrap_or_default()).map_err(shape)?;
    // One read of the log's live settings serves both checks.
    let config = partition.log().config();
    super::compacted_keys::require_keys(&batch, config.cleanup_policy.compact)
        .map_err(|err| (err.code(), err.to_string()))?;
    let now_ms = ctx.clock.now_ms();
    let rules = config.rules;
    match admit(&rules, acks, &batch, now_ms, in_sync)? {
        Admitted::AsSent => Ok(Ready::AsSent(batch)),
        Admitted::Stamped {
            bytes,
            append_time_ms,
        } => Ok(Ready::Stamped {
            bytes,
            at: append_time_ms,
        }),
    }
}

pub(crate) fn shape(err: ProducedBatchError) -> Refusal {
    (shape_error_code(&err), err.to_string())
}

/// Kafka's codes for a record set that is not one batch a producer may send: INVALID_RECORD
/// (not retried) when the client sent the wrong thing, CORRUPT_MESSAGE (retried) when the
/// bytes look damaged on the way.
fn shape_error_code(err: &ProducedBatchError) -> ErrorCode {
    match err {
        ProducedBatchError::UnknownMagic(_)
        | ProducedBatchError::ShorterThanHeader { .. }
        | ProducedBatchError::Header(_) => ErrorCode::CorruptMessage,
        ProducedBatchError::NoCompleteBatch { .. }
        | ProducedBatchError::LegacyMagic(_)
        | ProducedBatchError::NegativeLength { .. }
        | ProducedBatchError::Truncated { .. }
        | ProducedBatchError::MoreThanOneBatch
        | ProducedBatchError::ControlBatch => ErrorCode::InvalidRecord,
        // A refusal added later: the client sent something this broker does not take.
        _ => ErrorCode::InvalidRecord,
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_protocol::record_batch::{BatchBuilder, RecordInput, validate_batch};

    use super::*;

    fn batch_at(timestamps: &[i64]) -> Bytes {
        let mut builder = BatchBuilder::new();
        for &timestamp in timestamps {
            builder.push(RecordInput {
                timestamp,
                key: Some(b"k"),
                value: Some(b"v"),
                headers: &[],
            });
        }
        builder.build().expect("a batch")
    }

    fn admit_bytes(
        rules: &MessageRules,
        acks: i16,
        bytes: &[u8],
        now: i64,
    ) -> Result<Admitted, Refusal> {
        admit(rules, acks, &ProducedBatch::check(bytes).unwrap(), now, 1)
    }

    #[test]
    fn default_rules_take_the_batch_as_sent() {
        let rules = MessageRules::default();
        let bytes = batch_at(&[1, 2]);
        assert!(matches!(
            admit_bytes(&rules, -1, &bytes, 1_000_000),
            Ok(Admitted::AsSent)
        ));
    }

    #[test]
    fn a_batch_over_max_message_bytes_is_too_large() {
        let bytes = batch_at(&[1, 2, 3]);
        let rules = MessageRules {
            max_message_bytes: u32::try_from(bytes.len()).unwrap() - 1,
            ..MessageRules::default()
        };
        let (code, message) = admit_bytes(&rules, 1, &bytes, 0).unwrap_err();
        assert_eq!(code, ErrorCode::MessageTooLarge);
        assert!(message.contains("max.message.bytes"), "{message}");
        let exact = MessageRules {
            max_message_bytes: u32::try_from(bytes.len()).unwrap(),
            ..rules
        };
        assert!(admit_bytes(&exact, 1, &bytes, 0).is_ok());
    }

    #[test]
    fn acks_all_needs_min_insync_replicas_of_one() {
        let rules = MessageRules {
            min_insync_replicas: 2,
            ..MessageRules::default()
        };
        let bytes = batch_at(&[1]);
        let (code, _) = admit_bytes(&rules, -1, &bytes, 0).unwrap_err();
        assert_eq!(code, ErrorCode::NotEnoughReplicas);
        // Kafka checks min.insync.replicas for acks=all only.
        assert!(admit_bytes(&rules, 1, &bytes, 0).is_ok());
        assert!(admit_bytes(&rules, 0, &bytes, 0).is_ok());
    }

    #[test]
    fn create_time_bounds_check_every_record() {
        let now = 10_000;
        let rules = MessageRules {
            timestamp_before_max_ms: 1_000,
            timestamp_after_max_ms: 500,
            ..MessageRules::default()
        };
        assert!(admit_bytes(&rules, 1, &batch_at(&[9_000, 10_500]), now).is_ok());
        // The middle record is too old: found only by reading the records.
        let (code, message) =
            admit_bytes(&rules, 1, &batch_at(&[9_500, 8_999, 9_600]), now).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidTimestamp);
        assert!(message.contains("record 1"), "{message}");
        let (code, _) = admit_bytes(&rules, 1, &batch_at(&[10_501]), now).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidTimestamp);
        // No timestamp at all is not checked, as in Kafka.
        assert!(admit_bytes(&rules, 1, &batch_at(&[NO_TIMESTAMP]), now).is_ok());
    }

    #[test]
    fn create_time_bounds_read_the_records_of_a_compressed_batch() {
        let now = 10_000;
        let rules = MessageRules {
            timestamp_before_max_ms: 1_000,
            timestamp_after_max_ms: 500,
            ..MessageRules::default()
        };
        let gzipped = |timestamps: &[i64]| {
            let plain = batch_at(timestamps);
            let records = compression::compress(Compression::Gzip, &plain[HEADER_LEN..]).unwrap();
            weir_protocol::record_batch::with_compressed_records(
                &plain,
                Compression::Gzip,
                &records,
            )
            .unwrap()
        };
        // First and last in range, the middle one too old: only the records tell.
        let (code, message) =
            admit_bytes(&rules, 1, &gzipped(&[9_500, 8_000, 9_600]), now).unwrap_err();
        assert_eq!(code, ErrorCode::InvalidTimestamp);
        assert!(message.contains("record 1"), "{message}");
        assert!(admit_bytes(&rules, 1, &gzipped(&[9_500, 9_000, 9_600]), now).is_ok());
        // Damaged compressed records: CORRUPT_MESSAGE, not a timestamp verdict.
        let mut damaged = gzipped(&[9_500]).to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        let (code, _) = admit_bytes(&rules, 1, &damaged, now).unwrap_err();
        assert_eq!(code, ErrorCode::CorruptMessage);
    }

    #[test]
    fn log_append_time_stamps_a_verified_copy() {
        let rules = MessageRules {
            timestamp_type: TimestampType::LogAppendTime,
            // Ignored with LogAppendTime: the broker's time is in range by definition.
            timestamp_before_max_ms: 0,
            ..MessageRules::default()
        };
        let bytes = batch_at(&[1, 2]);
        let Ok(Admitted::Stamped {
            bytes: stamped,
            append_time_ms,
        }) = admit_bytes(&rules, 1, &bytes, 77_000)
        else {
            panic!("expected a stamped copy");
        };
        assert_eq!(append_time_ms, 77_000);
        let header = validate_batch(&stamped).unwrap();
        assert_eq!(header.max_timestamp, 77_000);
        assert_eq!(
            header.attributes.timestamp_type(),
            weir_protocol::record_batch::TimestampType::LogAppendTime
        );
        // A batch damaged on the way is refused, not given a fresh CRC.
        let mut damaged = bytes.to_vec();
        let last = damaged.len() - 1;
        damaged[last] ^= 0xff;
        let (code, _) = admit_bytes(&rules, 1, &damaged, 77_000).unwrap_err();
        assert_eq!(code, ErrorCode::CorruptMessage);
    }
}
