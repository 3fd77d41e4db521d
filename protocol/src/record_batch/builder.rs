//! Building v2 batches for producers and tests.
//!
//! [`BatchBuilder`] encodes each record as it is pushed into one growing buffer that starts
//! with 61 reserved bytes; [`BatchBuilder::build`] then fills in the header and CRC-32C in
//! place, so building is linear in the batch size. Batches are uncompressed, with base offset
//! 0 (the broker assigns the real one) and attributes 0 (create time, not transactional).
//! [`with_compressed_records`] turns such a batch into a compressed one, given the
//! compressed records section (this crate has no codecs).

use bytes::{BufMut, Bytes, BytesMut};

use super::{Attributes, Compression, HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2, field};
use crate::varint::{encode_varint, encode_varlong, varint_len, varlong_len};

/// One record to append: borrowed key, value and headers plus an absolute timestamp.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordInput<'a> {
    /// Key, or `None` for a null key.
    pub key: Option<&'a [u8]>,
    /// Value, or `None` for a tombstone.
    pub value: Option<&'a [u8]>,
    /// Headers as `(key, value)` pairs; a `None` value is a null header value.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
    /// Absolute timestamp in milliseconds.
    pub timestamp: i64,
}

/// Accumulates records into an uncompressed v2 batch.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    /// The reserved header followed by the encoded records.
    buf: BytesMut,
    count: usize,
    base_timestamp: i64,
    max_timestamp: i64,
    producer_id: i64,
    producer_epoch: i16,
    base_sequence: i32,
    partition_leader_epoch: i32,
    /// Only the control bit is ever set: the records are encoded uncompressed, with create
    /// times.
    attributes: i16,
}

impl Default for BatchBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchBuilder {
    /// An empty builder: no producer id/epoch/sequence (-1) and partition leader epoch -1.
    pub fn new() -> Self {
        let mut buf = BytesMut::with_capacity(HEADER_LEN);
        buf.put_bytes(0, HEADER_LEN);
        Self {
            buf,
            count: 0,
            base_timestamp: -1,
            max_timestamp: -1,
            producer_id: -1,
            producer_epoch: -1,
            base_sequence: -1,
            partition_leader_epoch: -1,
            attributes: 0,
        }
    }

    /// Sets the idempotent producer id, epoch and the sequence number of the first record.
    #[must_use]
    pub fn with_producer(
        mut self,
        producer_id: i64,
        producer_epoch: i16,
        base_sequence: i32,
    ) -> Self {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Marks the batch as a control batch (attributes bit 5): records that consumers skip,
    /// which only a broker writes (transaction markers, a replicated log's leader and
    /// membership entries).
    #[must_use]
    pub fn control(mut self) -> Self {
        self.attributes |= 0x20;
        self
    }

    /// Sets the partition leader epoch written in the header.
    #[must_use]
    pub fn with_partition_leader_epoch(mut self, epoch: i32) -> Self {
        self.partition_leader_epoch = epoch;
        self
    }

    /// Encodes `record` at the end of the batch. Its offset delta is its index; its timestamp
    /// is stored relative to the first record's.
    pub fn push(&mut self, record: RecordInput<'_>) {
        if self.count == 0 {
            self.base_timestamp = record.timestamp;
            self.max_timestamp = record.timestamp;
        } else {
            self.max_timestamp = self.max_timestamp.max(record.timestamp);
        }
        // Past i32::MAX records the batch is far larger than i32::MAX bytes and `build`
        // refuses it, so saturating here never produces a batch.
        let offset_delta = i32::try_from(self.count).unwrap_or(i32::MAX);
        // Wrapping like the Java client; `Record::timestamp` wraps back.
        let timestamp_delta = record.timestamp.wrapping_sub(self.base_timestamp);

        let headers_len: usize = record
            .headers
            .iter()
            .map(|(key, value)| bytes_len(Some(key)).saturating_add(bytes_len(*value)))
            .fold(0, usize::saturating_add);
        let body_len = 1usize
            .saturating_add(varlong_len(timestamp_delta))
            .saturating_add(varint_len(offset_delta))
            .saturating_add(bytes_len(record.key))
            .saturating_add(bytes_len(record.value))
            .saturating_add(varint_len(len_i32(record.headers.len())))
            .saturating_add(headers_len);
        let body_len_i32 = len_i32(body_len);

        self.buf
            .reserve(varint_len(body_len_i32).saturating_add(body_len));
        encode_varint(body_len_i32, &mut self.buf);
        self.buf.put_i8(0);
        encode_varlong(timestamp_delta, &mut self.buf);
        encode_varint(offset_delta, &mut self.buf);
        put_nullable(&mut self.buf, record.key);
        put_nullable(&mut self.buf, record.value);
        encode_varint(len_i32(record.headers.len()), &mut self.buf);
        for (key, value) in record.headers {
            put_nullable(&mut self.buf, Some(key));
            put_nullable(&mut self.buf, *value);
        }
        self.count += 1;
    }

    /// Number of records pushed so far.
    pub fn len(&self) -> usize {
        self.count
    }

    /// Whether no record has been pushed.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Exact size in bytes of the batch [`Self::build`] would return now. For an empty builder
    /// this is the bare header size (61), although `build` then returns `None`.
    pub fn size_in_bytes(&self) -> usize {
        self.buf.len()
    }

    /// Finishes the batch: writes the header and CRC-32C over the records encoded so far.
    ///
    /// Returns `None` for an empty builder (a v2 batch must hold at least one record) and for
    /// a batch whose size does not fit the `BatchLength` field (more than `i32::MAX` bytes).
    pub fn build(self) -> Option<Bytes> {
        if self.count == 0 {
            return None;
        }
        let batch_length = i32::try_from(self.buf.len().checked_sub(LENGTH_PREFIX_LEN)?).ok()?;
        let count = i32::try_from(self.count).ok()?;
        let mut buf = self.buf;

        let mut header = [0u8; HEADER_LEN];
        put_at(&mut header, field::BASE_OFFSET, &0i64.to_be_bytes());
        put_at(
            &mut header,
            field::BATCH_LENGTH,
            &batch_length.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::PARTITION_LEADER_EPOCH,
            &self.partition_leader_epoch.to_be_bytes(),
        );
        put_at(&mut header, field::MAGIC, &MAGIC_V2.to_be_bytes());
        put_at(
            &mut header,
            field::ATTRIBUTES,
            &self.attributes.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::LAST_OFFSET_DELTA,
            &(count - 1).to_be_bytes(),
        );
        put_at(
            &mut header,
            field::BASE_TIMESTAMP,
            &self.base_timestamp.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::MAX_TIMESTAMP,
            &self.max_timestamp.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::PRODUCER_ID,
            &self.producer_id.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::PRODUCER_EPOCH,
            &self.producer_epoch.to_be_bytes(),
        );
        put_at(
            &mut header,
            field::BASE_SEQUENCE,
            &self.base_sequence.to_be_bytes(),
        );
        put_at(&mut header, field::RECORDS_COUNT, &count.to_be_bytes());
        put_at(&mut buf, 0, &header);

        let crc = crc32c::crc32c_append(
            crc32c::crc32c(header.get(field::ATTRIBUTES..)?),
            buf.get(HEADER_LEN..)?,
        );
        put_at(&mut buf, field::CRC, &crc.to_be_bytes());
        Some(buf.freeze())
    }
}

/// Rebuilds `batch` (a batch from [`BatchBuilder::build`], uncompressed) with its records
/// section replaced by `records`, the same records compressed with `compression`: the
/// header is kept, the codec bits and `BatchLength` are set and the CRC-32C is recomputed.
///
/// Returns `None` if `batch` is shorter than a header or the result would exceed `i32::MAX`
/// bytes. With [`Compression::None`] and the original records it returns `batch` unchanged.
pub fn with_compressed_records(
    batch: &[u8],
    compression: Compression,
    records: &[u8],
) -> Option<Bytes> {
    let header = batch.get(..HEADER_LEN)?;
    let total = HEADER_LEN.checked_add(records.len())?;
    let batch_length = i32::try_from(total.checked_sub(LENGTH_PREFIX_LEN)?).ok()?;
    let mut buf = BytesMut::with_capacity(total);
    buf.put_slice(header);
    buf.put_slice(records);
    put_at(&mut buf, field::BATCH_LENGTH, &batch_length.to_be_bytes());
    let attributes = i16::from_be_bytes([
        *header.get(field::ATTRIBUTES)?,
        *header.get(field::ATTRIBUTES + 1)?,
    ]);
    let codec = Attributes::with_compression(compression).0;
    let attributes = (attributes & !0x07) | codec;
    put_at(&mut buf, field::ATTRIBUTES, &attributes.to_be_bytes());
    let crc = crc32c::crc32c(buf.get(field::ATTRIBUTES..)?);
    put_at(&mut buf, field::CRC, &crc.to_be_bytes());
    Some(buf.freeze())
}

/// Encoded size of a nullable byte string: varint length (-1 for null) plus the bytes.
fn bytes_len(bytes: Option<&[u8]>) -> usize {
    match bytes {
        None => varint_len(-1),
        Some(b) => varint_len(len_i32(b.len())).saturating_add(b.len()),
    }
}

fn put_nullable(buf: &mut BytesMut, bytes: Option<&[u8]>) {
    match bytes {
        None => encode_varint(-1, buf),
        Some(b) => {
            encode_varint(len_i32(b.len()), buf);
            buf.put_slice(b);
        }
    }
}

/// A length as the wire's `i32`. Lengths past `i32::MAX` saturate; such a batch exceeds
/// `i32::MAX` bytes, so [`BatchBuilder::build`] refuses it.
fn len_i32(len: usize) -> i32 {
    i32::try_from(len).unwrap_or(i32::MAX)
}

/// Copies `src` to `dst[at..]`; the callers' positions are within the reserved header.
fn put_at(dst: &mut [u8], at: usize, src: &[u8]) {
    if let Some(slot) = dst.get_mut(at..at.saturating_add(src.len())) {
        slot.copy_from_slice(src);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn empty_builder_builds_nothing() {
        let builder = BatchBuilder::new();
        assert!(builder.is_empty());
        assert_eq!(builder.size_in_bytes(), HEADER_LEN);
        assert_eq!(builder.build(), None);
    }

    #[test]
    fn size_is_exact() {
        let mut builder = BatchBuilder::new().with_producer(7, 1, 0);
        let headers: &[(&[u8], Option<&[u8]>)] = &[(b"a", Some(b"b")), (b"c", None)];
        for i in 0..5i64 {
            builder.push(RecordInput {
                key: Some(b"key"),
                value: if i % 2 == 0 { Some(b"value") } else { None },
                headers,
                timestamp: 1_000 + i * 1_000_000,
            });
        }
        assert_eq!(builder.len(), 5);
        let size = builder.size_in_bytes();
        let batch = builder.build().expect("non-empty");
        assert_eq!(batch.len(), size);
        let header = crate::record_batch::validate_batch(&batch).expect("valid");
        assert_eq!(header.producer_id, 7);
        assert_eq!(header.producer_epoch, 1);
        assert_eq!(header.base_sequence, 0);
        assert_eq!(header.partition_leader_epoch, -1);
        assert_eq!(header.base_timestamp, 1_000);
        assert_eq!(header.max_timestamp, 1_000 + 4_000_000);
        crate::record_batch::check_records(&batch, &header).expect("records");
    }

    #[test]
    fn compressed_records_replace_the_section() {
        let mut builder = BatchBuilder::new().with_producer(3, 0, 5);
        for i in 0..3i64 {
            builder.push(RecordInput {
                key: None,
                value: Some(b"value"),
                headers: &[],
                timestamp: 10 + i,
            });
        }
        let batch = builder.build().expect("non-empty");
        let same = with_compressed_records(&batch, Compression::None, &batch[HEADER_LEN..]);
        assert_eq!(same.as_ref(), Some(&batch));

        let packed = with_compressed_records(&batch, Compression::Zstd, b"opaque").expect("fits");
        assert_eq!(packed.len(), HEADER_LEN + 6);
        let header = crate::record_batch::validate_batch(&packed).expect("valid CRC and length");
        assert_eq!(header.attributes.compression(), Ok(Compression::Zstd));
        assert_eq!(header.records_count, 3);
        assert_eq!(header.base_sequence, 5);
        assert_eq!(header.max_timestamp, 12);
        assert_eq!(&packed[HEADER_LEN..], b"opaque");
        assert_eq!(
            with_compressed_records(&batch[..60], Compression::Gzip, b"x"),
            None
        );
    }
}
