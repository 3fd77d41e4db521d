//! Records inside an uncompressed v2 batch: lazy iteration and validation.
//!
//! Owns the per-record wire format:
//!
//! ```text
//! length          varint   bytes after this field
//! attributes      int8     unused, 0
//! timestampDelta  varlong  relative to BaseTimestamp
//! offsetDelta     varint   relative to BaseOffset
//! keyLength       varint   -1 = null
//! key             bytes
//! valueLength     varint   -1 = null
//! value           bytes
//! headersCount    varint
//! headers         keyLength varint + key, valueLength varint (-1 = null) + value
//! ```
//!
//! Records borrow from the batch bytes; nothing is copied. Every length is checked against the
//! bytes actually present, and no allocation is sized from an untrusted count without first
//! bounding it by the remaining bytes.

use std::iter::FusedIterator;

use super::{BatchError, BatchHeader, Compression, HEADER_LEN};
use crate::varint::{decode_varint, decode_varlong};

/// One record header. Keys are strings on the wire but are kept as raw bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header<'a> {
    /// Header key (never null on the wire).
    pub key: &'a [u8],
    /// Header value, `None` when its length is -1.
    pub value: Option<&'a [u8]>,
}

/// One decoded record, borrowing its key, value and headers from the batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record<'a> {
    /// Record attributes (unused by Kafka today).
    pub attributes: i8,
    /// Timestamp relative to the batch's `BaseTimestamp`.
    pub timestamp_delta: i64,
    /// Offset relative to the batch's `BaseOffset`.
    pub offset_delta: i32,
    /// Key, `None` when its length is -1.
    pub key: Option<&'a [u8]>,
    /// Value, `None` when its length is -1 (a tombstone).
    pub value: Option<&'a [u8]>,
    /// Headers in wire order.
    pub headers: Vec<Header<'a>>,
}

impl Record<'_> {
    /// Absolute timestamp given the batch's `BaseTimestamp`.
    ///
    /// Uses wrapping arithmetic, like the Java client (`baseTimestamp + timestampDelta`), so
    /// that any timestamp written by [`super::BatchBuilder`] reads back exactly, even when the
    /// delta between two extreme timestamps overflowed an `i64` on the way in.
    pub fn timestamp(&self, base_timestamp: i64) -> i64 {
        base_timestamp.wrapping_add(self.timestamp_delta)
    }

    /// Absolute offset given the batch's `BaseOffset` (saturating at `i64::MAX`/`i64::MIN`).
    pub fn offset(&self, base_offset: i64) -> i64 {
        base_offset.saturating_add(i64::from(self.offset_delta))
    }
}

/// Lazy iterator over the records of an uncompressed batch.
///
/// Yields `Err` at most once, then `None`. Besides malformed records it reports, as a final
/// error, bytes left over after the expected number of records, or records running out before
/// that number.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    remaining: &'a [u8],
    /// Records still expected; negative when the declared count was negative.
    expected: i64,
    index: usize,
    done: bool,
}

impl<'a> Records<'a> {
    /// Iterates the records of the whole uncompressed batch at the start of `batch`.
    ///
    /// Parses the header with [`BatchHeader::parse`] and takes the records from the bytes its
    /// `BatchLength` covers; bytes after the batch are ignored. Does not check the CRC: call
    /// [`super::validate_batch`] first for untrusted input. Fails with
    /// [`BatchError::Truncated`] when the batch is shorter than declared, and with
    /// `BadRecord { index: 0, reason: "batch is compressed" }` for a compressed batch.
    pub fn new(batch: &'a [u8]) -> Result<Self, BatchError> {
        let header = BatchHeader::parse(batch)?;
        if header.attributes.compression()? != Compression::None {
            return Err(BatchError::BadRecord {
                index: 0,
                reason: "batch is compressed",
            });
        }
        let records = records_slice(batch, &header)?;
        Ok(Self::from_raw(records, header.records_count))
    }

    /// Iterates `count` records from already-decompressed record bytes (everything after the
    /// 61-byte header). A negative `count` yields a single error.
    pub fn from_raw(records: &'a [u8], count: i32) -> Self {
        Self {
            remaining: records,
            expected: i64::from(count),
            index: 0,
            done: false,
        }
    }

    fn fail(&mut self, reason: &'static str) -> Option<Result<Record<'a>, BatchError>> {
        self.done = true;
        Some(Err(BatchError::BadRecord {
            index: self.index,
            reason,
        }))
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.expected < 0 {
            return self.fail("negative record count");
        }
        if self.expected == 0 {
            if self.remaining.is_empty() {
                self.done = true;
                return None;
            }
            return self.fail("bytes left after the last record");
        }
        if self.remaining.is_empty() {
            return self.fail("fewer records than the batch count");
        }
        match parse_record(self.remaining) {
            Ok((record, used)) => {
                // `used` never exceeds the slice length; `get` keeps that obvious.
                self.remaining = self.remaining.get(used..).unwrap_or_default();
                self.expected -= 1;
                self.index += 1;
                Some(Ok(record))
            }
            Err(reason) => self.fail(reason),
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        if self.done {
            return (0, Some(0));
        }
        // Each record takes at least 7 bytes; one more item may be a final error.
        let by_bytes = self.remaining.len() / MIN_RECORD_LEN;
        let by_count = usize::try_from(self.expected).unwrap_or(0);
        (0, Some(by_bytes.min(by_count).saturating_add(1)))
    }
}

impl FusedIterator for Records<'_> {}

/// Checks the records of a batch whose header has already passed
/// [`super::validate_batch`]: exactly `records_count` well-formed records, record `i` has
/// offset delta `i`, every record's declared length matches the bytes it uses, and nothing
/// follows the last record.
///
/// Compressed batches return `Ok(())` untouched: the broker has no codecs, so it cannot look
/// inside them and relies on the header and CRC checks alone.
pub fn check_records(batch: &[u8], header: &BatchHeader) -> Result<(), BatchError> {
    if header.attributes.compression()? != Compression::None {
        return Ok(());
    }
    if header.records_count <= 0 {
        return Err(BatchError::BadRecordCount {
            records_count: header.records_count,
            last_offset_delta: header.last_offset_delta,
        });
    }
    let records = records_slice(batch, header)?;
    if records.len() + HEADER_LEN != batch.len() {
        return Err(BatchError::BadLength {
            declared: i64::from(header.batch_length),
            reason: "trailing bytes after the batch",
        });
    }
    for (index, record) in Records::from_raw(records, header.records_count).enumerate() {
        let record = record?;
        if usize::try_from(record.offset_delta).ok() != Some(index) {
            return Err(BatchError::BadRecord {
                index,
                reason: "offset delta does not match the record's position",
            });
        }
    }
    Ok(())
}

/// Smallest possible record: length, attributes, timestamp delta, offset delta, key length,
/// value length and header count, one byte each.
const MIN_RECORD_LEN: usize = 7;

/// Smallest possible header: key length and value length, one byte each.
const MIN_HEADER_LEN: usize = 2;

/// The record bytes of the batch at the start of `batch`, as declared by `header`.
fn records_slice<'a>(batch: &'a [u8], header: &BatchHeader) -> Result<&'a [u8], BatchError> {
    let total = header.total_len()?;
    batch.get(HEADER_LEN..total).ok_or(BatchError::Truncated {
        needed: total,
        available: batch.len(),
    })
}

/// Parses one record at the start of `buf`, returning it and the bytes it used (length field
/// included).
fn parse_record(buf: &[u8]) -> Result<(Record<'_>, usize), &'static str> {
    let (length, prefix) = decode_varint(buf).ok_or("bad record length varint")?;
    let length = usize::try_from(length)
        .ok()
        .ok_or("negative record length")?;
    let end = prefix
        .checked_add(length)
        .ok_or("record length past the end of the batch")?;
    let body = buf
        .get(prefix..end)
        .ok_or("record length past the end of the batch")?;

    let mut cur = Cursor(body);
    let attributes = cur.i8().ok_or("record truncated before attributes")?;
    let timestamp_delta = cur.varlong().ok_or("bad timestamp delta varlong")?;
    let offset_delta = cur.varint().ok_or("bad offset delta varint")?;
    let key = cur.nullable_bytes("bad key length")?;
    let value = cur.nullable_bytes("bad value length")?;
    let header_count = cur.varint().ok_or("bad header count varint")?;
    let header_count = usize::try_from(header_count)
        .ok()
        .ok_or("negative header count")?;
    if header_count > cur.0.len() / MIN_HEADER_LEN {
        return Err("header count larger than the record");
    }
    let mut headers = Vec::with_capacity(header_count);
    for _ in 0..header_count {
        let key_len = cur.varint().ok_or("bad header key length varint")?;
        let key_len = usize::try_from(key_len)
            .ok()
            .ok_or("negative header key length")?;
        let key = cur
            .bytes(key_len)
            .ok_or("header key past the end of the record")?;
        let value = cur.nullable_bytes("bad header value length")?;
        headers.push(Header { key, value });
    }
    if !cur.0.is_empty() {
        return Err("record length does not match its contents");
    }
    let record = Record {
        attributes,
        timestamp_delta,
        offset_delta,
        key,
        value,
        headers,
    };
    Ok((record, end))
}

/// A forward-only reader over one record's bytes.
struct Cursor<'a>(&'a [u8]);

impl<'a> Cursor<'a> {
    fn i8(&mut self) -> Option<i8> {
        let (&first, rest) = self.0.split_first()?;
        self.0 = rest;
        Some(i8::from_be_bytes([first]))
    }

    fn varint(&mut self) -> Option<i32> {
        let (value, used) = decode_varint(self.0)?;
        self.0 = self.0.get(used..)?;
        Some(value)
    }

    fn varlong(&mut self) -> Option<i64> {
        let (value, used) = decode_varlong(self.0)?;
        self.0 = self.0.get(used..)?;
        Some(value)
    }

    fn bytes(&mut self, len: usize) -> Option<&'a [u8]> {
        if len > self.0.len() {
            return None;
        }
        let (taken, rest) = self.0.split_at(len);
        self.0 = rest;
        Some(taken)
    }

    /// A varint length (-1 = null) followed by that many bytes.
    fn nullable_bytes(&mut self, what: &'static str) -> Result<Option<&'a [u8]>, &'static str> {
        let len = self.varint().ok_or(what)?;
        if len == -1 {
            return Ok(None);
        }
        let len = usize::try_from(len).ok().ok_or(what)?;
        self.bytes(len).map(Some).ok_or(what)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::varint::{encode_varint, encode_varlong};

    fn record_bytes(body: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(i32::try_from(body.len()).unwrap_or(i32::MAX), &mut out);
        out.extend_from_slice(body);
        out
    }

    fn body(offset_delta: i32, key: Option<&[u8]>, headers: &[(&[u8], Option<&[u8]>)]) -> Vec<u8> {
        let mut b = vec![0u8];
        encode_varlong(5, &mut b);
        encode_varint(offset_delta, &mut b);
        match key {
            Some(k) => {
                encode_varint(i32::try_from(k.len()).unwrap_or(i32::MAX), &mut b);
                b.extend_from_slice(k);
            }
            None => encode_varint(-1, &mut b),
        }
        encode_varint(-1, &mut b);
        encode_varint(i32::try_from(headers.len()).unwrap_or(i32::MAX), &mut b);
        for (k, v) in headers {
            encode_varint(i32::try_from(k.len()).unwrap_or(i32::MAX), &mut b);
            b.extend_from_slice(k);
            match v {
                Some(v) => {
                    encode_varint(i32::try_from(v.len()).unwrap_or(i32::MAX), &mut b);
                    b.extend_from_slice(v);
                }
                None => encode_varint(-1, &mut b),
            }
        }
        b
    }

    #[test]
    fn parses_records_with_headers() {
        let mut raw = record_bytes(&body(0, Some(b"k"), &[(b"h", Some(b"v")), (b"n", None)]));
        raw.extend(record_bytes(&body(1, None, &[])));
        let records: Vec<_> = Records::from_raw(&raw, 2).collect();
        assert_eq!(records.len(), 2);
        let first = records[0].as_ref().expect("first record");
        assert_eq!(first.key, Some(&b"k"[..]));
        assert_eq!(first.value, None);
        assert_eq!(first.timestamp(100), 105);
        assert_eq!(first.offset(10), 10);
        assert_eq!(
            first.headers,
            [
                Header {
                    key: b"h",
                    value: Some(b"v")
                },
                Header {
                    key: b"n",
                    value: None
                }
            ]
        );
        let second = records[1].as_ref().expect("second record");
        assert_eq!(second.key, None);
        assert_eq!(second.offset(10), 11);
    }

    #[test]
    fn count_mismatch_is_one_error() {
        let raw = record_bytes(&body(0, None, &[]));
        let mut it = Records::from_raw(&raw, 2);
        assert!(matches!(it.next(), Some(Ok(_))));
        assert!(matches!(
            it.next(),
            Some(Err(BatchError::BadRecord { index: 1, .. }))
        ));
        assert_eq!(it.next(), None);

        let mut it = Records::from_raw(&raw, 0);
        assert!(matches!(
            it.next(),
            Some(Err(BatchError::BadRecord { index: 0, .. }))
        ));
        assert_eq!(it.next(), None);

        let mut it = Records::from_raw(&raw, -1);
        assert!(matches!(it.next(), Some(Err(_))));
        assert_eq!(it.next(), None);

        assert_eq!(Records::from_raw(&[], 0).next(), None);
    }

    #[test]
    fn declared_length_must_match_contents() {
        let mut b = body(0, None, &[]);
        b.push(0); // one byte the fields do not use
        let raw = record_bytes(&b);
        let mut it = Records::from_raw(&raw, 1);
        assert_eq!(
            it.next(),
            Some(Err(BatchError::BadRecord {
                index: 0,
                reason: "record length does not match its contents"
            }))
        );
        assert_eq!(it.next(), None);
    }

    #[test]
    fn huge_header_count_is_rejected_without_allocating() {
        let mut b = vec![0u8];
        encode_varlong(0, &mut b);
        encode_varint(0, &mut b);
        encode_varint(-1, &mut b);
        encode_varint(-1, &mut b);
        encode_varint(i32::MAX, &mut b);
        let raw = record_bytes(&b);
        assert!(matches!(Records::from_raw(&raw, 1).next(), Some(Err(_))));
    }

    #[test]
    fn negative_lengths_are_rejected() {
        // Key length -2.
        let mut b = vec![0u8];
        encode_varlong(0, &mut b);
        encode_varint(0, &mut b);
        encode_varint(-2, &mut b);
        let raw = record_bytes(&b);
        assert!(matches!(Records::from_raw(&raw, 1).next(), Some(Err(_))));
        // Record length -1.
        let mut raw = Vec::new();
        encode_varint(-1, &mut raw);
        assert!(matches!(Records::from_raw(&raw, 1).next(), Some(Err(_))));
        // Header key length -1 (header keys are never null).
        let mut b = vec![0u8];
        encode_varlong(0, &mut b);
        encode_varint(0, &mut b);
        encode_varint(-1, &mut b);
        encode_varint(-1, &mut b);
        encode_varint(1, &mut b);
        encode_varint(-1, &mut b);
        encode_varint(-1, &mut b);
        let raw = record_bytes(&b);
        assert!(matches!(Records::from_raw(&raw, 1).next(), Some(Err(_))));
    }
}
