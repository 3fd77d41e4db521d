//! The shape check of a record set sent by a producer: [`ProducedBatch`].
//!
//! Owns Kafka's rule for Produce v3 and later: a partition's record set is exactly one
//! complete v2 batch, and not a control batch. A set that passes comes back as a
//! [`ProducedBatch`], its header parsed once, for the producer-state check and the log to
//! share; one that fails comes back as a [`ProducedBatchError`] saying which rule it broke.
//!
//! It does not check what lies inside the batch (CRC-32C, record count, records): that is
//! [`super::verify_batch`]'s, which the log runs before it stores the bytes, after the
//! producer's sequence has been checked.
//!
//! Invariants: a [`ProducedBatch`] exists only through [`ProducedBatch::check`], so holding one
//! means its bytes are exactly one v2 batch (declared length equal to the bytes, at least a
//! header long), not a control batch, and its header is the one parsed from those bytes.
//! Nothing here panics on any input.

use super::{BatchError, BatchHeader, HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2, field};
use crate::record_batch::Attributes;

/// One v2 batch as a producer may send it, with its parsed header. Built only by
/// [`Self::check`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProducedBatch<'a> {
    /// Parsed from `bytes` by [`Self::check`]; never set apart from them.
    header: BatchHeader,
    /// The whole batch, length prefix included, exactly as sent.
    bytes: &'a [u8],
}

/// Why a record set is not one batch a producer may send. Each variant's message is what the
/// client is told.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ProducedBatchError {
    /// Too few bytes to read the magic byte, the length and the attributes.
    #[error("record set of {len} bytes holds no complete batch")]
    NoCompleteBatch {
        /// Bytes sent.
        len: usize,
    },
    /// Magic 0 or 1: a legacy message set, which Produce v3 and later do not carry.
    #[error("magic {0} batches are not accepted by Produce v3 and later")]
    LegacyMagic(i8),
    /// A magic byte no format has: the batch was damaged on the way.
    #[error("unknown record batch magic {0}")]
    UnknownMagic(i8),
    /// `BatchLength` is positive but shorter than a batch header: damaged on the way.
    #[error("batch length {declared} is shorter than a batch header")]
    ShorterThanHeader {
        /// The declared `BatchLength`.
        declared: i32,
    },
    /// `BatchLength` is negative.
    #[error("negative batch length {declared}")]
    NegativeLength {
        /// The declared `BatchLength`.
        declared: i32,
    },
    /// The batch declares more bytes than were sent.
    #[error("truncated batch: {declared_bytes} bytes declared, {sent_bytes} sent")]
    Truncated {
        /// The batch's whole size, length prefix included, from its `BatchLength`.
        declared_bytes: usize,
        /// Bytes sent.
        sent_bytes: usize,
    },
    /// Bytes follow the first batch: Produce carries one batch per partition.
    #[error("more than one batch for one partition")]
    MoreThanOneBatch,
    /// A control batch (transaction marker), which only the broker writes.
    #[error("producers may not send control batches")]
    ControlBatch,
    /// The header passed the checks above but could not be parsed (not expected: those checks
    /// cover what parsing refuses).
    #[error("invalid record batch: {0}")]
    Header(#[source] BatchError),
}

impl<'a> ProducedBatch<'a> {
    /// Checks that `records` is exactly one complete v2 batch and not a control batch, and
    /// parses its header. The checks run in this order, the first failing one answering:
    /// enough bytes for the fixed fields read, magic, declared length, one whole batch,
    /// control bit.
    pub fn check(records: &'a [u8]) -> Result<Self, ProducedBatchError> {
        let Some(head) = records.get(..=field::ATTRIBUTES + 1) else {
            return Err(ProducedBatchError::NoCompleteBatch { len: records.len() });
        };
        let magic = i8::from_be_bytes([head[field::MAGIC]]);
        if matches!(magic, 0 | 1) {
            return Err(ProducedBatchError::LegacyMagic(magic));
        }
        if magic != MAGIC_V2 {
            return Err(ProducedBatchError::UnknownMagic(magic));
        }
        let at = field::BATCH_LENGTH;
        let declared = i32::from_be_bytes([head[at], head[at + 1], head[at + 2], head[at + 3]]);
        let Ok(length) = usize::try_from(declared) else {
            return Err(ProducedBatchError::NegativeLength { declared });
        };
        let declared_bytes = length.saturating_add(LENGTH_PREFIX_LEN);
        if declared_bytes < HEADER_LEN {
            return Err(ProducedBatchError::ShorterThanHeader { declared });
        }
        if declared_bytes > records.len() {
            return Err(ProducedBatchError::Truncated {
                declared_bytes,
                sent_bytes: records.len(),
            });
        }
        if declared_bytes < records.len() {
            return Err(ProducedBatchError::MoreThanOneBatch);
        }
        let attributes = Attributes(i16::from_be_bytes([
            head[field::ATTRIBUTES],
            head[field::ATTRIBUTES + 1],
        ]));
        if attributes.is_control() {
            return Err(ProducedBatchError::ControlBatch);
        }
        let header = BatchHeader::parse(records).map_err(ProducedBatchError::Header)?;
        Ok(Self {
            header,
            bytes: records,
        })
    }

    /// The batch's header, parsed once by [`Self::check`].
    pub fn header(&self) -> &BatchHeader {
        &self.header
    }

    /// The whole batch as sent, length prefix included.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record_batch::{BatchBuilder, RecordInput, verify_batch};

    /// A valid uncompressed batch of `records` records from an idempotent producer.
    fn batch(records: usize) -> Vec<u8> {
        let mut b = BatchBuilder::new().with_producer(7, 1, 40);
        for _ in 0..records {
            b.push(RecordInput {
                value: Some(b"value"),
                ..RecordInput::default()
            });
        }
        b.build().unwrap().to_vec()
    }

    fn set_length(bytes: &mut [u8], length: i32) {
        bytes[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    }

    #[test]
    fn a_valid_batch_comes_back_with_its_header() {
        let bytes = batch(3);
        let checked = ProducedBatch::check(&bytes).unwrap();
        assert_eq!(checked.bytes(), &bytes[..]);
        assert_eq!(*checked.header(), BatchHeader::parse(&bytes).unwrap());
        assert_eq!(checked.header().producer_id, 7);
        assert_eq!(checked.header().base_sequence, 40);
        assert_eq!(checked.header().records_count, 3);
    }

    #[test]
    fn fewer_bytes_than_the_fixed_fields_hold_no_batch() {
        let bytes = batch(1);
        for len in [0, 1, field::ATTRIBUTES + 1] {
            assert_eq!(
                ProducedBatch::check(&bytes[..len]),
                Err(ProducedBatchError::NoCompleteBatch { len })
            );
        }
        assert_eq!(
            ProducedBatch::check(&[]).unwrap_err().to_string(),
            "record set of 0 bytes holds no complete batch"
        );
    }

    #[test]
    fn legacy_and_unknown_magic_are_refused_apart() {
        for magic in [0i8, 1] {
            let mut bytes = batch(1);
            bytes[field::MAGIC] = magic.to_be_bytes()[0];
            assert_eq!(
                ProducedBatch::check(&bytes),
                Err(ProducedBatchError::LegacyMagic(magic))
            );
        }
        for magic in [3i8, -1, 127] {
            let mut bytes = batch(1);
            bytes[field::MAGIC] = magic.to_be_bytes()[0];
            assert_eq!(
                ProducedBatch::check(&bytes),
                Err(ProducedBatchError::UnknownMagic(magic))
            );
        }
        let mut bytes = batch(1);
        bytes[field::MAGIC] = 1;
        assert_eq!(
            ProducedBatch::check(&bytes).unwrap_err().to_string(),
            "magic 1 batches are not accepted by Produce v3 and later"
        );
    }

    #[test]
    fn lengths_shorter_than_a_header_or_negative_are_refused() {
        let mut bytes = batch(1);
        set_length(&mut bytes, 48);
        assert_eq!(
            ProducedBatch::check(&bytes),
            Err(ProducedBatchError::ShorterThanHeader { declared: 48 })
        );
        set_length(&mut bytes, 0);
        assert_eq!(
            ProducedBatch::check(&bytes),
            Err(ProducedBatchError::ShorterThanHeader { declared: 0 })
        );
        set_length(&mut bytes, -5);
        assert_eq!(
            ProducedBatch::check(&bytes),
            Err(ProducedBatchError::NegativeLength { declared: -5 })
        );
        set_length(&mut bytes, i32::MIN);
        assert!(matches!(
            ProducedBatch::check(&bytes),
            Err(ProducedBatchError::NegativeLength { .. })
        ));
    }

    #[test]
    fn a_truncated_batch_is_refused() {
        let bytes = batch(2);
        let cut = &bytes[..bytes.len() - 1];
        assert_eq!(
            ProducedBatch::check(cut),
            Err(ProducedBatchError::Truncated {
                declared_bytes: bytes.len(),
                sent_bytes: bytes.len() - 1,
            })
        );
        // A header-sized prefix of a longer batch is truncated too, not "no batch".
        assert!(matches!(
            ProducedBatch::check(&bytes[..HEADER_LEN]),
            Err(ProducedBatchError::Truncated { .. })
        ));
        // So is a declared length past the largest buffer (no overflow on the way).
        let mut huge = bytes.clone();
        set_length(&mut huge, i32::MAX);
        assert!(matches!(
            ProducedBatch::check(&huge),
            Err(ProducedBatchError::Truncated { .. })
        ));
    }

    #[test]
    fn two_batches_or_trailing_bytes_are_refused() {
        let mut two = batch(1);
        two.extend_from_slice(&batch(1));
        assert_eq!(
            ProducedBatch::check(&two),
            Err(ProducedBatchError::MoreThanOneBatch)
        );
        let mut trailing = batch(1);
        trailing.push(0);
        assert_eq!(
            ProducedBatch::check(&trailing),
            Err(ProducedBatchError::MoreThanOneBatch)
        );
    }

    #[test]
    fn a_control_batch_is_refused() {
        let mut bytes = batch(1);
        let attributes =
            i16::from_be_bytes([bytes[field::ATTRIBUTES], bytes[field::ATTRIBUTES + 1]]);
        bytes[field::ATTRIBUTES..field::ATTRIBUTES + 2]
            .copy_from_slice(&(attributes | 0x20).to_be_bytes());
        assert_eq!(
            ProducedBatch::check(&bytes),
            Err(ProducedBatchError::ControlBatch)
        );
    }

    #[test]
    fn damage_inside_the_batch_is_left_to_verify_batch() {
        // A bad CRC passes the shape check: the log's verify_batch refuses it.
        let mut bad_crc = batch(2);
        let last = bad_crc.len() - 1;
        bad_crc[last] ^= 0xff;
        let checked = ProducedBatch::check(&bad_crc).unwrap();
        assert!(matches!(
            verify_batch(checked.bytes(), checked.header()),
            Err(BatchError::BadCrc { .. })
        ));
        // So does a record count that disagrees with the last offset delta.
        let mut bad_count = batch(2);
        bad_count[field::RECORDS_COUNT..field::RECORDS_COUNT + 4]
            .copy_from_slice(&5i32.to_be_bytes());
        let crc = crc32c::crc32c(&bad_count[field::ATTRIBUTES..]);
        bad_count[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
        let checked = ProducedBatch::check(&bad_count).unwrap();
        assert_eq!(
            verify_batch(checked.bytes(), checked.header()),
            Err(BatchError::BadRecordCount {
                records_count: 5,
                last_offset_delta: 1,
            })
        );
        // And an intact batch verifies.
        let good = batch(2);
        let checked = ProducedBatch::check(&good).unwrap();
        assert_eq!(verify_batch(checked.bytes(), checked.header()), Ok(()));
    }
}
