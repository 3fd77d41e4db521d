//! The fixed 61-byte batch header: parsing, whole-batch validation and in-place patching.

use super::{BatchError, HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2, field};

/// Compression codec named by attribute bits 0-2.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// No compression: records follow the header directly.
    None,
    /// gzip.
    Gzip,
    /// Snappy (raw or xerial-framed).
    Snappy,
    /// LZ4 frame format.
    Lz4,
    /// Zstandard.
    Zstd,
}

impl Compression {
    /// Every codec, in attribute-bit order (tests and fuzzers go through each).
    pub const ALL: [Self; 5] = [Self::None, Self::Gzip, Self::Snappy, Self::Lz4, Self::Zstd];

    /// The codec for attribute bits 0-2.
    pub fn from_bits(bits: u8) -> Result<Self, BatchError> {
        match bits {
            0 => Ok(Self::None),
            1 => Ok(Self::Gzip),
            2 => Ok(Self::Snappy),
            3 => Ok(Self::Lz4),
            4 => Ok(Self::Zstd),
            other => Err(BatchError::UnknownCompression(other)),
        }
    }

    /// The attribute bits for this codec.
    pub fn bits(self) -> u8 {
        match self {
            Self::None => 0,
            Self::Gzip => 1,
            Self::Snappy => 2,
            Self::Lz4 => 3,
            Self::Zstd => 4,
        }
    }
}

/// Whether record timestamps were set by the producer or by the broker.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TimestampType {
    /// Set by the producer when the record was created.
    CreateTime,
    /// Set by the broker on append (`MaxTimestamp` holds it for every record).
    LogAppendTime,
}

/// The `Attributes` field of a batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Attributes(pub i16);

impl Attributes {
    const COMPRESSION_MASK: i16 = 0x07;
    const TIMESTAMP_TYPE: i16 = 0x08;
    const TRANSACTIONAL: i16 = 0x10;
    const CONTROL: i16 = 0x20;

    /// Attributes for a plain producer batch with the given codec.
    pub fn with_compression(compression: Compression) -> Self {
        Self(i16::from(compression.bits()))
    }

    /// The codec, or an error for the unassigned values 5-7.
    pub fn compression(self) -> Result<Compression, BatchError> {
        // The mask keeps three bits, so the conversion cannot fail; the fallback would be
        // reported as an unknown codec rather than panic.
        Compression::from_bits(u8::try_from(self.0 & Self::COMPRESSION_MASK).unwrap_or(u8::MAX))
    }

    /// Producer time or broker time.
    pub fn timestamp_type(self) -> TimestampType {
        if self.0 & Self::TIMESTAMP_TYPE != 0 {
            TimestampType::LogAppendTime
        } else {
            TimestampType::CreateTime
        }
    }

    /// Part of a transaction.
    pub fn is_transactional(self) -> bool {
        self.0 & Self::TRANSACTIONAL != 0
    }

    /// A control batch (transaction markers); producers never send these.
    pub fn is_control(self) -> bool {
        self.0 & Self::CONTROL != 0
    }
}

/// The decoded fixed header of a v2 batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BatchHeader {
    /// Offset of the first record.
    pub base_offset: i64,
    /// Bytes after the `BatchLength` field.
    pub batch_length: i32,
    /// Leader epoch stamped by the broker.
    pub partition_leader_epoch: i32,
    /// Format version; always 2 once validated.
    pub magic: i8,
    /// Stored CRC-32C.
    pub crc: u32,
    /// Codec, timestamp type, transactional and control bits.
    pub attributes: Attributes,
    /// Offset of the last record relative to `base_offset`.
    pub last_offset_delta: i32,
    /// Timestamp of the first record.
    pub base_timestamp: i64,
    /// Largest timestamp in the batch.
    pub max_timestamp: i64,
    /// Idempotent producer id, or -1.
    pub producer_id: i64,
    /// Idempotent producer epoch, or -1.
    pub producer_epoch: i16,
    /// Sequence number of the first record, or -1.
    pub base_sequence: i32,
    /// Number of records.
    pub records_count: i32,
}

impl BatchHeader {
    /// Decodes the 61 header bytes at the start of `buf`. Checks the magic byte and that the
    /// declared length covers at least a header, but not the CRC (see [`validate_batch`]).
    pub fn parse(buf: &[u8]) -> Result<Self, BatchError> {
        if buf.len() < HEADER_LEN {
            return Err(BatchError::Truncated {
                needed: HEADER_LEN,
                available: buf.len(),
            });
        }
        let magic = i8::from_be_bytes([buf[field::MAGIC]]);
        if magic != MAGIC_V2 {
            return Err(BatchError::BadMagic(magic));
        }
        let header = Self {
            base_offset: read_i64(buf, field::BASE_OFFSET),
            batch_length: read_i32(buf, field::BATCH_LENGTH),
            partition_leader_epoch: read_i32(buf, field::PARTITION_LEADER_EPOCH),
            magic,
            crc: read_u32(buf, field::CRC),
            attributes: Attributes(read_i16(buf, field::ATTRIBUTES)),
            last_offset_delta: read_i32(buf, field::LAST_OFFSET_DELTA),
            base_timestamp: read_i64(buf, field::BASE_TIMESTAMP),
            max_timestamp: read_i64(buf, field::MAX_TIMESTAMP),
            producer_id: read_i64(buf, field::PRODUCER_ID),
            producer_epoch: read_i16(buf, field::PRODUCER_EPOCH),
            base_sequence: read_i32(buf, field::BASE_SEQUENCE),
            records_count: read_i32(buf, field::RECORDS_COUNT),
        };
        header.total_len()?;
        Ok(header)
    }

    /// Size of the whole batch in bytes, prefix included.
    pub fn total_len(&self) -> Result<usize, BatchError> {
        total_len_from_length_field(self.batch_length)
    }

    /// Offset of the last record.
    pub fn last_offset(&self) -> i64 {
        self.base_offset
            .saturating_add(i64::from(self.last_offset_delta))
    }

    /// The offset right after this batch.
    pub fn next_offset(&self) -> i64 {
        self.last_offset().saturating_add(1)
    }
}

/// Reads the total size of the batch starting at `buf` from its 12-byte prefix alone, so that a
/// scanner can find batch boundaries. `Ok(None)` when fewer than 12 bytes are present.
pub fn batch_len_prefix(buf: &[u8]) -> Result<Option<usize>, BatchError> {
    if buf.len() < LENGTH_PREFIX_LEN {
        return Ok(None);
    }
    total_len_from_length_field(read_i32(buf, field::BATCH_LENGTH)).map(Some)
}

fn total_len_from_length_field(batch_length: i32) -> Result<usize, BatchError> {
    // The header minus the length prefix: 49 bytes.
    let min = i32::try_from(HEADER_LEN - LENGTH_PREFIX_LEN).unwrap_or(i32::MAX);
    if batch_length < min {
        return Err(BatchError::BadLength {
            declared: i64::from(batch_length),
            reason: "shorter than a batch header",
        });
    }
    // batch_length >= 49 > 0, so the conversion cannot fail.
    Ok(usize::try_from(batch_length)
        .unwrap_or(usize::MAX)
        .saturating_add(LENGTH_PREFIX_LEN))
}

/// Validates that `buf` holds exactly one complete v2 batch: the declared length equals
/// `buf.len()`, magic is 2, the CRC-32C matches, the codec is known and
/// `RecordsCount == LastOffsetDelta + 1 > 0`. Records themselves are checked by
/// [`super::check_records`] (only possible when uncompressed).
pub fn validate_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    verify_batch(buf, &header)?;
    Ok(header)
}

/// The part of [`validate_batch`] that follows parsing, for a caller that holds `buf`'s parsed
/// header already (a [`super::ProducedBatch`]): the declared length equals `buf.len()`, the
/// CRC-32C matches, the codec is known and `RecordsCount == LastOffsetDelta + 1 > 0`.
/// `header` must be the one parsed from `buf`.
pub fn verify_batch(buf: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    verify_with(buf, header, Counts::Dense)
}

/// [`validate_batch`] for a batch read back from a log that may have been compacted: the
/// cleaner keeps a batch's `BaseOffset` and `LastOffsetDelta` (so offsets and the producer's
/// sequence range survive) while dropping some of its records, and keeps the emptied last
/// batch of an idempotent producer. So `0 <= RecordsCount <= LastOffsetDelta + 1` rather
/// than equality. Batches from producers are checked with [`validate_batch`].
pub fn validate_stored_batch(buf: &[u8]) -> Result<BatchHeader, BatchError> {
    let header = BatchHeader::parse(buf)?;
    verify_with(buf, &header, Counts::Compacted)?;
    Ok(header)
}

/// Which record counts a batch may carry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Counts {
    /// `RecordsCount == LastOffsetDelta + 1 > 0`: as produced.
    Dense,
    /// `0 <= RecordsCount <= LastOffsetDelta + 1`: as a log cleaner may leave it.
    Compacted,
}

fn verify_with(buf: &[u8], header: &BatchHeader, counts: Counts) -> Result<(), BatchError> {
    let total = header.total_len()?;
    if total != buf.len() {
        return Err(if total > buf.len() {
            BatchError::Truncated {
                needed: total,
                available: buf.len(),
            }
        } else {
            BatchError::BadLength {
                declared: i64::from(header.batch_length),
                reason: "trailing bytes after the batch",
            }
        });
    }
    let computed = crc32c::crc32c(&buf[field::ATTRIBUTES..]);
    if computed != header.crc {
        return Err(BatchError::BadCrc {
            stored: header.crc,
            computed,
        });
    }
    header.attributes.compression()?;
    let count = i64::from(header.records_count);
    let span = i64::from(header.last_offset_delta) + 1;
    let bad = match counts {
        Counts::Dense => count <= 0 || count != span,
        Counts::Compacted => count < 0 || span <= 0 || count > span,
    };
    if bad {
        return Err(BatchError::BadRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    Ok(())
}

/// Writes the broker-assigned base offset. `BaseOffset` lies outside the CRC, so the batch stays
/// valid. `buf` must hold at least the 8 bytes of the field; shorter buffers are left alone.
pub fn set_base_offset(buf: &mut [u8], base_offset: i64) {
    if let Some(dst) = buf.get_mut(field::BASE_OFFSET..field::BASE_OFFSET + 8) {
        dst.copy_from_slice(&base_offset.to_be_bytes());
    }
}

/// Writes the partition leader epoch, which also lies outside the CRC.
pub fn set_partition_leader_epoch(buf: &mut [u8], epoch: i32) {
    let at = field::PARTITION_LEADER_EPOCH;
    if let Some(dst) = buf.get_mut(at..at + 4) {
        dst.copy_from_slice(&epoch.to_be_bytes());
    }
}

/// Marks the batch in `buf` as stamped by the broker (Kafka's `LogAppendTime`): sets the
/// timestamp-type attribute and `MaxTimestamp` to `append_time_ms`, which readers then take as
/// every record's timestamp, and recomputes the CRC-32C, which covers both fields. Records
/// stay as sent (a compressed batch is not rewritten). `buf` must be one complete batch
/// ([`validate_batch`] passed); a buffer shorter than a header is left alone.
pub fn stamp_log_append_time(buf: &mut [u8], append_time_ms: i64) {
    if buf.len() < HEADER_LEN {
        return;
    }
    let attributes = i16::from_be_bytes([buf[field::ATTRIBUTES], buf[field::ATTRIBUTES + 1]])
        | Attributes::TIMESTAMP_TYPE;
    buf[field::ATTRIBUTES..field::ATTRIBUTES + 2].copy_from_slice(&attributes.to_be_bytes());
    buf[field::MAX_TIMESTAMP..field::MAX_TIMESTAMP + 8]
        .copy_from_slice(&append_time_ms.to_be_bytes());
    let crc = crc32c::crc32c(&buf[field::ATTRIBUTES..]);
    buf[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
}

// Callers have checked `buf.len() >= HEADER_LEN`, so these fixed-size reads are in bounds.
fn read_i64(buf: &[u8], at: usize) -> i64 {
    let mut b = [0u8; 8];
    b.copy_from_slice(&buf[at..at + 8]);
    i64::from_be_bytes(b)
}

fn read_i32(buf: &[u8], at: usize) -> i32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    i32::from_be_bytes(b)
}

fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_be_bytes(b)
}

fn read_i16(buf: &[u8], at: usize) -> i16 {
    i16::from_be_bytes([buf[at], buf[at + 1]])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{BatchBuilder, RecordInput};

    #[test]
    fn a_stamped_batch_is_valid_and_says_log_append_time() {
        let mut builder = BatchBuilder::new();
        for ts in [5, 7] {
            builder.push(RecordInput {
                timestamp: ts,
                key: Some(b"k"),
                value: Some(b"v"),
                headers: &[],
            });
        }
        let mut bytes = builder.build().expect("a batch").to_vec();
        let before = validate_batch(&bytes).expect("valid as built");
        assert_eq!(
            before.attributes.timestamp_type(),
            TimestampType::CreateTime
        );
        stamp_log_append_time(&mut bytes, 1_000);
        let after = validate_batch(&bytes).expect("still valid: the CRC was recomputed");
        assert_eq!(
            after.attributes.timestamp_type(),
            TimestampType::LogAppendTime
        );
        assert_eq!(after.max_timestamp, 1_000);
        assert_eq!(after.base_timestamp, before.base_timestamp);
        assert_eq!(
            after.attributes.compression().unwrap(),
            before.attributes.compression().unwrap()
        );
        // Too short to be a batch: untouched, no panic.
        let mut short = vec![0u8; 10];
        stamp_log_append_time(&mut short, 1);
        assert_eq!(short, vec![0u8; 10]);
    }
}
