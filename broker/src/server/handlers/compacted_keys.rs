//! Produce to a compacted log: every record must have a key (Kafka refuses a keyless record
//! with INVALID_RECORD, since compaction keeps the last record *per key*).
//!
//! Owns only that check, kept apart from the produce handler: given whether the log's live
//! `cleanup.policy` compacts, it verifies the batch's CRC (so a damaged batch gets CORRUPT_MESSAGE, as
//! the log would answer) and decompresses a compressed batch, bounded, to see its keys.

use weir_protocol::compression;
use weir_protocol::error_code::ErrorCode;
use weir_protocol::record_batch::{Compression, HEADER_LEN, ProducedBatch, Records, verify_batch};

use crate::log::cleaner::DECOMPRESSED_BATCH_MAX_BYTES;

/// Why a batch was refused for a compacted log.
#[derive(Debug, thiserror::Error)]
pub(crate) enum KeyCheckError {
    /// A record has no key.
    #[error("compacted topic refuses record {index} of the batch: it has no key")]
    Keyless {
        /// Its index in the batch.
        index: usize,
    },
    /// The batch or its records do not parse, or its records do not decompress.
    #[error("cannot read the batch's records to check their keys: {0}")]
    Unreadable(String),
}

impl KeyCheckError {
    /// The Produce error code Kafka gives.
    pub(crate) fn code(&self) -> ErrorCode {
        match self {
            Self::Keyless { .. } => ErrorCode::InvalidRecord,
            Self::Unreadable(_) => ErrorCode::CorruptMessage,
        }
    }
}

/// Checks that every record of `batch` has a key if its log is `compacted` (the log's live
/// `cleanup.policy`, read by the caller once for all its checks).
pub(crate) fn require_keys(
    batch: &ProducedBatch<'_>,
    compacted: bool,
) -> Result<(), KeyCheckError> {
    if !compacted {
        return Ok(());
    }
    let unreadable = |e: &dyn std::fmt::Display| KeyCheckError::Unreadable(e.to_string());
    let header = batch.header();
    verify_batch(batch.bytes(), header).map_err(|e| unreadable(&e))?;
    let codec = header
        .attributes
        .compression()
        .map_err(|e| unreadable(&e))?;
    let raw = &batch.bytes()[HEADER_LEN..];
    let decompressed;
    let records = if codec == Compression::None {
        raw
    } else {
        decompressed = compression::decompress(codec, raw, DECOMPRESSED_BATCH_MAX_BYTES)
            .map_err(|e| unreadable(&e))?;
        &decompressed[..]
    };
    for (index, record) in Records::from_raw(records, header.records_count).enumerate() {
        if record.map_err(|e| unreadable(&e))?.key.is_none() {
            return Err(KeyCheckError::Keyless { index });
        }
    }
    Ok(())
}
