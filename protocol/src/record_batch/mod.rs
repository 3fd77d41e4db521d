//! Kafka record batches, format v2 (magic 2).
//!
//! Owns the byte layout of a batch and everything that can be decided from the bytes alone:
//! parsing the fixed 61-byte header, checking length, magic and CRC-32C, checking the records
//! of an uncompressed batch, patching the fields the broker assigns (base offset, partition
//! leader epoch) in place, iterating records lazily, and building batches for producers. It
//! also owns the shape a producer's record set must have ([`ProducedBatch`]: exactly one v2
//! batch, not a control batch), so the broker parses a produced batch's header once.
//!
//! It does not decompress (compressed batches are validated up to their header and CRC) and it
//! does not decide offsets: the log does.
//!
//! ```text
//! offset  field                  type
//! 0       BaseOffset             int64    assigned by the broker (outside the CRC)
//! 8       BatchLength            int32    bytes after this field
//! 12      PartitionLeaderEpoch   int32    set by the broker (outside the CRC)
//! 16      Magic                  int8     2
//! 17      CRC                    uint32   CRC-32C of everything from Attributes to the end
//! 21      Attributes             int16    bits 0-2 codec, 3 timestamp type, 4 transactional, 5 control
//! 23      LastOffsetDelta        int32
//! 27      BaseTimestamp          int64
//! 35      MaxTimestamp           int64
//! 43      ProducerId             int64
//! 51      ProducerEpoch          int16
//! 53      BaseSequence           int32
//! 57      RecordsCount           int32
//! 61      Records                ...
//! ```
//!
//! Invariants: nothing here panics on any input; every length read from the bytes is checked
//! against the bytes actually present before it is used.

mod builder;
mod header;
mod produced;
mod records;

pub use builder::{BatchBuilder, RecordInput, with_compressed_records};
pub use header::{
    Attributes, BatchHeader, Compression, TimestampType, batch_len_prefix, set_base_offset,
    set_partition_leader_epoch, stamp_log_append_time, validate_batch, validate_stored_batch,
    verify_batch,
};
pub use produced::{ProducedBatch, ProducedBatchError};
pub use records::{Header, Record, Records, check_records};

/// Field positions inside a batch, in bytes from its first byte.
pub mod field {
    /// `BaseOffset`, int64.
    pub const BASE_OFFSET: usize = 0;
    /// `BatchLength`, int32: the number of bytes that follow this field.
    pub const BATCH_LENGTH: usize = 8;
    /// `PartitionLeaderEpoch`, int32.
    pub const PARTITION_LEADER_EPOCH: usize = 12;
    /// `Magic`, int8.
    pub const MAGIC: usize = 16;
    /// `CRC`, uint32.
    pub const CRC: usize = 17;
    /// `Attributes`, int16: the first byte covered by the CRC.
    pub const ATTRIBUTES: usize = 21;
    /// `LastOffsetDelta`, int32.
    pub const LAST_OFFSET_DELTA: usize = 23;
    /// `BaseTimestamp`, int64.
    pub const BASE_TIMESTAMP: usize = 27;
    /// `MaxTimestamp`, int64.
    pub const MAX_TIMESTAMP: usize = 35;
    /// `ProducerId`, int64.
    pub const PRODUCER_ID: usize = 43;
    /// `ProducerEpoch`, int16.
    pub const PRODUCER_EPOCH: usize = 51;
    /// `BaseSequence`, int32.
    pub const BASE_SEQUENCE: usize = 53;
    /// `RecordsCount`, int32.
    pub const RECORDS_COUNT: usize = 57;
}

/// The only batch format Weir stores.
pub const MAGIC_V2: i8 = 2;
/// Size of the fixed batch header; records start here.
pub const HEADER_LEN: usize = 61;
/// Bytes that `BatchLength` does not count: `BaseOffset` and `BatchLength` themselves.
pub const LENGTH_PREFIX_LEN: usize = 12;

/// Why a batch was rejected. Each variant says what was wrong with the bytes, never with I/O.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BatchError {
    /// Fewer bytes than a field or the declared length needs.
    #[error("record batch truncated: need {needed} bytes, have {available}")]
    Truncated {
        /// Bytes the layout requires.
        needed: usize,
        /// Bytes actually present.
        available: usize,
    },
    /// `BatchLength` is negative, smaller than the header, or disagrees with the buffer.
    #[error("record batch length {declared} is invalid ({reason})")]
    BadLength {
        /// The declared `BatchLength`.
        declared: i64,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// Magic byte other than 2.
    #[error("unsupported record batch magic {0} (only v2 is supported)")]
    BadMagic(i8),
    /// The CRC-32C stored in the batch does not match its contents.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    BadCrc {
        /// CRC found in the header.
        stored: u32,
        /// CRC computed over attributes..end.
        computed: u32,
    },
    /// `RecordsCount` is not positive or disagrees with `LastOffsetDelta + 1`.
    #[error(
        "record batch count {records_count} does not match last offset delta {last_offset_delta}"
    )]
    BadRecordCount {
        /// `RecordsCount` from the header.
        records_count: i32,
        /// `LastOffsetDelta` from the header.
        last_offset_delta: i32,
    },
    /// A record inside the batch is malformed (bad varint, length past the end, wrong offset delta...).
    #[error("invalid record {index} in batch: {reason}")]
    BadRecord {
        /// Zero-based index of the record.
        index: usize,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The compression bits name a codec that does not exist (5, 6 or 7).
    #[error("unknown compression codec {0}")]
    UnknownCompression(u8),
}
