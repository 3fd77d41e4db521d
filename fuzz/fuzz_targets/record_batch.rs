//! The v2 record batch code in `weir_protocol::record_batch` on untrusted bytes, doing what the
//! broker does with a produced batch and with segment bytes on recovery.
//!
//! The input is used twice: as is (as a producer or a damaged segment would send it), and
//! "repaired" — `BatchLength` set to the input length and the CRC-32C recomputed — so that the
//! fuzzer gets past the length and CRC checks into record validation without having to solve
//! a CRC. Each pass:
//!
//! - walks the bytes as a segment (`batch_len_prefix`, `BatchHeader::parse`, `validate_batch`
//!   batch after batch) and checks the prefix, header and total length agree;
//! - runs the produce path on the whole input: `ProducedBatch::check` (one v2 batch, not
//!   control; its header must be `BatchHeader::parse`'s), `verify_batch` on that header (must
//!   agree with `validate_batch`), `check_records`, then patches base offset and leader epoch in place and
//!   checks the batch is still valid with the new values;
//! - iterates `Records::new` (the segment's timestamp lookup) whatever validation said: at
//!   most one error, last, within the `size_hint` bound, then fused; every record's absolute
//!   timestamp and offset computed;
//! - for a batch that passed `check_records`, rebuilds it with `BatchBuilder` from its records
//!   and checks the rebuilt batch is valid, holds the same records, has the size the builder
//!   announced, and rebuilds to identical bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_protocol::record_batch::{
    BatchBuilder, BatchError, BatchHeader, Compression, HEADER_LEN, LENGTH_PREFIX_LEN, MAGIC_V2,
    ProducedBatch, Record, RecordInput, Records, batch_len_prefix, check_records, field,
    set_base_offset, set_partition_leader_epoch, validate_batch, verify_batch,
};

/// A header as `BatchBuilder` takes it.
type HeaderInput<'a> = (&'a [u8], Option<&'a [u8]>);

/// Sets `BatchLength` to cover exactly `buf` and recomputes the CRC; `None` when too short.
fn repair(data: &[u8]) -> Option<Vec<u8>> {
    if data.len() < HEADER_LEN {
        return None;
    }
    let mut buf = data.to_vec();
    let length = i32::try_from(buf.len() - LENGTH_PREFIX_LEN).ok()?;
    buf[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&length.to_be_bytes());
    let crc = crc32c::crc32c(&buf[field::ATTRIBUTES..]);
    buf[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    Some(buf)
}

/// Like `broker::log::scan`: batch after batch until the bytes end or stop making sense.
fn walk_segment(data: &[u8]) {
    let mut pos = 0;
    while let Some(rest) = data.get(pos..) {
        let len = match batch_len_prefix(rest) {
            Ok(Some(len)) => len,
            Ok(None) => {
                assert!(rest.len() < LENGTH_PREFIX_LEN);
                return;
            }
            Err(_) => return,
        };
        assert!(
            len >= HEADER_LEN,
            "batch length {len} below the header size"
        );
        match BatchHeader::parse(rest) {
            Ok(header) => {
                assert_eq!(header.magic, MAGIC_V2);
                assert_eq!(header.total_len(), Ok(len));
                let _ = (header.last_offset(), header.next_offset());
            }
            Err(BatchError::Truncated { needed, available }) => {
                assert_eq!(needed, HEADER_LEN);
                assert_eq!(available, rest.len());
            }
            Err(_) => {}
        }
        let Some(batch) = rest.get(..len) else {
            return;
        };
        if let Ok(header) = validate_batch(batch) {
            let _ = check_records(batch, &header);
        }
        pos += len;
    }
}

/// Iterates the records the way the segment's timestamp lookup does, checking the
/// iterator's contract. Returns the records when all of them parsed.
fn iterate(data: &[u8]) -> Option<(BatchHeader, Vec<Record<'_>>)> {
    let records = match Records::new(data) {
        Ok(records) => records,
        Err(_) => return None,
    };
    let header = BatchHeader::parse(data).expect("Records::new parsed the header");
    assert_eq!(header.attributes.compression(), Ok(Compression::None));
    let (_, upper) = records.size_hint();
    let upper = upper.expect("an upper bound");
    let mut ok = Vec::new();
    let mut errors = 0;
    let mut it = records;
    for item in it.by_ref() {
        assert_eq!(errors, 0, "an item after an error");
        match item {
            Ok(record) => {
                let _ = record.timestamp(header.base_timestamp);
                let _ = record.offset(header.base_offset);
                ok.push(record);
            }
            Err(BatchError::BadRecord { index, .. }) => {
                assert_eq!(index, ok.len());
                errors += 1;
            }
            Err(err) => panic!("record iteration gave {err:?}"),
        }
    }
    assert!(
        ok.len() + errors <= upper,
        "more items than size_hint allowed"
    );
    assert!(it.next().is_none(), "not fused");
    assert!(ok.len() <= usize::try_from(header.records_count).unwrap_or(0));
    (errors == 0).then_some((header, ok))
}

/// What the produce path does with the batch; returns the header when the broker would
/// append it.
fn produce(data: &[u8]) -> Option<BatchHeader> {
    let produced = ProducedBatch::check(data).ok()?;
    let parsed = *produced.header();
    assert_eq!(BatchHeader::parse(data), Ok(parsed));
    assert!(!parsed.attributes.is_control());
    assert_eq!(produced.bytes().len(), data.len());
    let verified = verify_batch(data, &parsed);
    assert_eq!(verified.clone().map(|()| parsed), validate_batch(data));
    verified.ok()?;
    let header = parsed;
    assert_eq!(header.total_len(), Ok(data.len()));
    assert_eq!(crc32c::crc32c(&data[field::ATTRIBUTES..]), header.crc);
    let compression = header.attributes.compression().expect("validated codec");
    assert!(header.records_count > 0);
    assert_eq!(
        i64::from(header.records_count),
        i64::from(header.last_offset_delta) + 1
    );
    check_records(data, &header).ok()?;

    if compression == Compression::None {
        let (_, records) = iterate(data).expect("checked records iterate");
        assert_eq!(records.len(), header.records_count as usize);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.offset_delta as usize, i);
        }
    }

    // The broker-assigned fields are outside the CRC.
    let mut patched = data.to_vec();
    set_base_offset(&mut patched, 0x0123_4567_89ab_cdef);
    set_partition_leader_epoch(&mut patched, 7);
    let after = validate_batch(&patched).expect("patching keeps the batch valid");
    assert_eq!(after.base_offset, 0x0123_4567_89ab_cdef);
    assert_eq!(after.partition_leader_epoch, 7);
    assert_eq!(after.crc, header.crc);
    assert_eq!(&patched[field::MAGIC..], &data[field::MAGIC..]);
    Some(header)
}

/// Rebuilds a checked uncompressed batch from its records.
fn rebuild(header: &BatchHeader, records: &[Record<'_>]) {
    let headers: Vec<Vec<HeaderInput<'_>>> = records
        .iter()
        .map(|r| r.headers.iter().map(|h| (h.key, h.value)).collect())
        .collect();
    let build = |records: &[Record<'_>], base_timestamp: i64| {
        let mut builder = BatchBuilder::new()
            .with_producer(
                header.producer_id,
                header.producer_epoch,
                header.base_sequence,
            )
            .with_partition_leader_epoch(header.partition_leader_epoch);
        for (record, headers) in records.iter().zip(&headers) {
            builder.push(RecordInput {
                key: record.key,
                value: record.value,
                headers,
                timestamp: record.timestamp(base_timestamp),
            });
        }
        assert_eq!(builder.len(), records.len());
        let size = builder.size_in_bytes();
        let built = builder.build().expect("a non-empty batch that fits");
        assert_eq!(built.len(), size);
        built
    };
    let built = build(records, header.base_timestamp);
    let new = validate_batch(&built).expect("built batch is valid");
    check_records(&built, &new).expect("built records are valid");
    assert_eq!(new.records_count, header.records_count);
    assert_eq!(new.producer_id, header.producer_id);
    assert_eq!(new.producer_epoch, header.producer_epoch);
    assert_eq!(new.base_sequence, header.base_sequence);
    assert_eq!(new.partition_leader_epoch, header.partition_leader_epoch);

    let (_, again) = iterate(&built).expect("built batch iterates");
    assert_eq!(again.len(), records.len());
    let mut max_timestamp = None;
    for (a, b) in records.iter().zip(&again) {
        let ts = a.timestamp(header.base_timestamp);
        assert_eq!(b.timestamp(new.base_timestamp), ts);
        max_timestamp = max_timestamp.max(Some(ts));
        assert_eq!(a.offset_delta, b.offset_delta);
        assert_eq!(a.key, b.key);
        assert_eq!(a.value, b.value);
        assert_eq!(a.headers, b.headers);
        assert_eq!(b.attributes, 0);
    }
    assert_eq!(Some(new.max_timestamp), max_timestamp);

    // Building is deterministic: the rebuilt batch rebuilds to itself.
    assert_eq!(build(&again, new.base_timestamp), built);
}

fn run(data: &[u8]) {
    walk_segment(data);
    let iterated = iterate(data);
    if let (Some(header), Some((_, records))) = (produce(data), iterated) {
        rebuild(&header, &records);
    }
}

fuzz_target!(|data: &[u8]| {
    run(data);
    if let Some(repaired) = repair(data) {
        run(&repaired);
    }
});
