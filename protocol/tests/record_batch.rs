//! Property and known-answer tests for v2 record batches: builder round trips, in-place
//! patching, CRC coverage, robustness against arbitrary bytes, and record-level checks.

use proptest::prelude::*;
use weir_protocol::record_batch::{
    BatchBuilder, BatchError, BatchHeader, HEADER_LEN, Header, ProducedBatch, RecordInput, Records,
    batch_len_prefix, check_records, field, set_base_offset, set_partition_leader_epoch,
    validate_batch, validate_stored_batch, verify_batch,
};
use weir_protocol::varint::{encode_varint, encode_varlong};

#[derive(Debug, Clone)]
struct OwnedRecord {
    key: Option<Vec<u8>>,
    value: Option<Vec<u8>>,
    headers: Vec<(Vec<u8>, Option<Vec<u8>>)>,
    timestamp: i64,
}

fn bytes(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(any::<u8>(), 0..max)
}

fn owned_record() -> impl Strategy<Value = OwnedRecord> {
    (
        prop::option::of(bytes(300)),
        prop::option::of(bytes(300)),
        prop::collection::vec((bytes(20), prop::option::of(bytes(20))), 0..4),
        prop_oneof![
            any::<i64>(),
            0i64..2_000_000_000_000,
            Just(i64::MIN),
            Just(i64::MAX)
        ],
    )
        .prop_map(|(key, value, headers, timestamp)| OwnedRecord {
            key,
            value,
            headers,
            timestamp,
        })
}

fn owned_records() -> impl Strategy<Value = Vec<OwnedRecord>> {
    prop::collection::vec(owned_record(), 1..16)
}

/// Builds a batch from owned records with the builder under test.
fn build(records: &[OwnedRecord]) -> Vec<u8> {
    let mut builder = BatchBuilder::new();
    for r in records {
        let headers: Vec<(&[u8], Option<&[u8]>)> = r
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), v.as_deref()))
            .collect();
        builder.push(RecordInput {
            key: r.key.as_deref(),
            value: r.value.as_deref(),
            headers: &headers,
            timestamp: r.timestamp,
        });
    }
    let expected_size = builder.size_in_bytes();
    let batch = builder.build().expect("non-empty builder builds");
    assert_eq!(batch.len(), expected_size);
    batch.to_vec()
}

/// Runs every decoder over `buf`; the only requirement is that none of them panics.
fn exercise_all(buf: &[u8]) {
    let _parsed = BatchHeader::parse(buf);
    let _validated = validate_batch(buf);
    let _prefix = batch_len_prefix(buf);
    if let Ok(records) = Records::new(buf) {
        for r in records.flatten() {
            let _ts = r.timestamp(i64::MAX);
            let _off = r.offset(i64::MAX);
        }
    }
    if let Ok(header) = BatchHeader::parse(buf) {
        let _checked = check_records(buf, &header);
    }
    produced_agrees_with_validate_batch(buf);
    for count in [-1, 0, 1, 3, i32::MAX] {
        for record in Records::from_raw(buf, count) {
            let _r = record;
        }
    }
}

/// The produce path's shape check and the log's whole-batch check agree: a batch
/// `validate_batch` takes that is not a control batch passes `ProducedBatch::check` with the
/// same header, and one that passes the check is verified by `verify_batch` exactly as
/// `validate_batch` would.
fn produced_agrees_with_validate_batch(buf: &[u8]) {
    let validated = validate_batch(buf);
    match ProducedBatch::check(buf) {
        Ok(produced) => {
            assert_eq!(BatchHeader::parse(buf).as_ref(), Ok(produced.header()));
            assert!(!produced.header().attributes.is_control());
            assert_eq!(produced.bytes(), buf);
            assert_eq!(
                verify_batch(buf, produced.header()).map(|()| *produced.header()),
                validated
            );
        }
        Err(err) => {
            if let Ok(header) = validated {
                assert!(
                    header.attributes.is_control(),
                    "a valid batch refused by the shape check: {err}"
                );
            }
        }
    }
}

/// A complete uncompressed batch around hand-encoded record bytes, with a correct CRC.
fn raw_batch(records: &[u8], records_count: i32, last_offset_delta: i32) -> Vec<u8> {
    let batch_length = i32::try_from(HEADER_LEN - 12 + records.len()).expect("small batch");
    let mut b = Vec::new();
    b.extend_from_slice(&0i64.to_be_bytes());
    b.extend_from_slice(&batch_length.to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.push(2);
    b.extend_from_slice(&0u32.to_be_bytes());
    b.extend_from_slice(&0i16.to_be_bytes());
    b.extend_from_slice(&last_offset_delta.to_be_bytes());
    b.extend_from_slice(&1000i64.to_be_bytes());
    b.extend_from_slice(&1000i64.to_be_bytes());
    b.extend_from_slice(&(-1i64).to_be_bytes());
    b.extend_from_slice(&(-1i16).to_be_bytes());
    b.extend_from_slice(&(-1i32).to_be_bytes());
    b.extend_from_slice(&records_count.to_be_bytes());
    assert_eq!(b.len(), HEADER_LEN);
    b.extend_from_slice(records);
    let crc = crc32c::crc32c(&b[field::ATTRIBUTES..]);
    b[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    b
}

/// One record with no key, no value and no headers, encoded by hand.
fn raw_record(offset_delta: i32) -> Vec<u8> {
    let mut body = vec![0u8];
    encode_varlong(0, &mut body);
    encode_varint(offset_delta, &mut body);
    encode_varint(-1, &mut body);
    encode_varint(-1, &mut body);
    encode_varint(0, &mut body);
    let mut out = Vec::new();
    encode_varint(i32::try_from(body.len()).expect("small record"), &mut out);
    out.extend_from_slice(&body);
    out
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn round_trip(records in owned_records()) {
        let batch = build(&records);
        let header = validate_batch(&batch).expect("built batch validates");
        check_records(&batch, &header).expect("built batch records check");
        prop_assert_eq!(ProducedBatch::check(&batch).map(|p| *p.header()), Ok(header));
        produced_agrees_with_validate_batch(&batch);

        let n = i32::try_from(records.len()).expect("few records");
        prop_assert_eq!(header.base_offset, 0);
        prop_assert_eq!(header.records_count, n);
        prop_assert_eq!(header.last_offset_delta, n - 1);
        prop_assert_eq!(header.base_timestamp, records[0].timestamp);
        let max = records.iter().map(|r| r.timestamp).max().expect("non-empty");
        prop_assert_eq!(header.max_timestamp, max);

        let decoded: Vec<_> = Records::new(&batch)
            .expect("uncompressed batch iterates")
            .collect::<Result<_, _>>()
            .expect("every record decodes");
        prop_assert_eq!(decoded.len(), records.len());
        for (i, (got, want)) in decoded.iter().zip(&records).enumerate() {
            prop_assert_eq!(got.key, want.key.as_deref());
            prop_assert_eq!(got.value, want.value.as_deref());
            let want_headers: Vec<Header<'_>> = want
                .headers
                .iter()
                .map(|(k, v)| Header { key: k, value: v.as_deref() })
                .collect();
            prop_assert_eq!(&got.headers, &want_headers);
            prop_assert_eq!(got.timestamp(header.base_timestamp), want.timestamp);
            prop_assert_eq!(got.offset(header.base_offset), i64::try_from(i).expect("small"));
            prop_assert_eq!(got.attributes, 0);
        }
    }

    #[test]
    fn patching_keeps_batch_valid(
        records in prop::collection::vec(owned_record(), 1..4),
        base_offset in any::<i64>(),
        epoch in any::<i32>(),
    ) {
        let mut batch = build(&records);
        set_base_offset(&mut batch, base_offset);
        set_partition_leader_epoch(&mut batch, epoch);
        let header = validate_batch(&batch).expect("patched batch still validates");
        prop_assert_eq!(header.base_offset, base_offset);
        prop_assert_eq!(header.partition_leader_epoch, epoch);
        check_records(&batch, &header).expect("records unaffected");
        let n = i64::try_from(records.len()).expect("few records");
        prop_assert_eq!(header.last_offset(), base_offset.saturating_add(n - 1));
        let first = Records::new(&batch).expect("iterates").next().expect("one record");
        prop_assert_eq!(first.expect("decodes").offset(header.base_offset), base_offset);
    }

    #[test]
    fn bit_flip_in_crc_range_is_detected(
        records in prop::collection::vec(owned_record(), 1..4),
        position in any::<prop::sample::Index>(),
        bit in 0u8..8,
    ) {
        let mut batch = build(&records);
        let at = field::ATTRIBUTES + position.index(batch.len() - field::ATTRIBUTES);
        batch[at] ^= 1 << bit;
        prop_assert!(validate_batch(&batch).is_err(), "flip at byte {} bit {} passed", at, bit);
    }

    #[test]
    fn bit_flip_in_length_or_magic_is_detected(
        records in prop::collection::vec(owned_record(), 1..4),
        position in prop_oneof![field::BATCH_LENGTH..field::BATCH_LENGTH + 4, Just(field::MAGIC)],
        bit in 0u8..8,
    ) {
        let mut batch = build(&records);
        batch[position] ^= 1 << bit;
        prop_assert!(validate_batch(&batch).is_err());
    }

    #[test]
    fn arbitrary_bytes_never_panic(buf in bytes(600)) {
        exercise_all(&buf);
    }

    #[test]
    fn plausible_headers_never_panic(mut buf in bytes(400), count in any::<i32>()) {
        // Make the header parse so that record decoding is reached.
        buf.resize(buf.len().max(HEADER_LEN), 0);
        let batch_length = i32::try_from(buf.len() - 12).expect("small");
        buf[field::BATCH_LENGTH..field::BATCH_LENGTH + 4].copy_from_slice(&batch_length.to_be_bytes());
        buf[field::MAGIC] = 2;
        buf[field::ATTRIBUTES] = 0;
        buf[field::ATTRIBUTES + 1] &= 0xf8;
        buf[field::RECORDS_COUNT..field::RECORDS_COUNT + 4].copy_from_slice(&count.to_be_bytes());
        exercise_all(&buf);
    }

    #[test]
    fn truncated_batches_never_panic(records in owned_records(), cut in any::<prop::sample::Index>()) {
        let batch = build(&records);
        let cut = cut.index(batch.len());
        let truncated = &batch[..cut];
        exercise_all(truncated);
        prop_assert!(validate_batch(truncated).is_err());
        // Also the records alone, cut short.
        let n = i32::try_from(records.len()).expect("few records");
        let raw = &batch[HEADER_LEN..];
        let raw_cut = &raw[..cut.min(raw.len())];
        let all_ok = Records::from_raw(raw_cut, n).all(|r| r.is_ok());
        prop_assert_eq!(all_ok, raw_cut.len() == raw.len());
    }

    #[test]
    fn corrupted_records_never_panic(
        records in owned_records(),
        edits in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
    ) {
        let mut batch = build(&records);
        let records_len = batch.len() - HEADER_LEN;
        for (at, byte) in edits {
            let at = HEADER_LEN + at.index(records_len);
            batch[at] = byte;
        }
        exercise_all(&batch);
    }
}

#[test]
fn every_single_bit_flip_is_detected_exhaustively() {
    let records = [OwnedRecord {
        key: Some(b"key".to_vec()),
        value: Some(b"value".to_vec()),
        headers: vec![(b"h".to_vec(), None)],
        timestamp: 42,
    }];
    let batch = build(&records);
    validate_batch(&batch).expect("valid");
    let positions = (field::BATCH_LENGTH..field::BATCH_LENGTH + 4)
        .chain([field::MAGIC])
        .chain(field::CRC..batch.len());
    for at in positions {
        for bit in 0..8 {
            let mut flipped = batch.clone();
            flipped[at] ^= 1 << bit;
            assert!(
                validate_batch(&flipped).is_err(),
                "flip at byte {at} bit {bit} passed"
            );
        }
    }
}

#[test]
fn non_dense_offset_deltas_fail_check_records() {
    let mut records = raw_record(0);
    records.extend(raw_record(2));
    let batch = raw_batch(&records, 2, 1);
    let header = validate_batch(&batch).expect("header and CRC are fine");
    assert!(matches!(
        check_records(&batch, &header),
        Err(BatchError::BadRecord { index: 1, .. })
    ));
}

#[test]
fn dense_hand_made_batch_passes_check_records() {
    let mut records = raw_record(0);
    records.extend(raw_record(1));
    let batch = raw_batch(&records, 2, 1);
    let header = validate_batch(&batch).expect("valid");
    check_records(&batch, &header).expect("dense records");
}

#[test]
fn record_count_mismatch_fails_check_records() {
    // Header says 3 records (last offset delta 2), but only 2 are present.
    let mut records = raw_record(0);
    records.extend(raw_record(1));
    let batch = raw_batch(&records, 3, 2);
    let header = validate_batch(&batch).expect("header and CRC are fine");
    assert!(matches!(
        check_records(&batch, &header),
        Err(BatchError::BadRecord { index: 2, .. })
    ));
    // Header says 1 record, but 2 are present: trailing bytes.
    let batch = raw_batch(&records, 1, 0);
    let header = validate_batch(&batch).expect("header and CRC are fine");
    assert!(matches!(
        check_records(&batch, &header),
        Err(BatchError::BadRecord { index: 1, .. })
    ));
}

#[test]
fn compressed_batch_is_not_iterated_but_passes_check_records() {
    let mut batch = raw_batch(&[1, 2, 3], 1, 0);
    batch[field::ATTRIBUTES + 1] = 1; // gzip
    let crc = crc32c::crc32c(&batch[field::ATTRIBUTES..]);
    batch[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    let header = validate_batch(&batch).expect("valid compressed batch");
    assert_eq!(check_records(&batch, &header), Ok(()));
    assert_eq!(
        Records::new(&batch).err(),
        Some(BatchError::BadRecord {
            index: 0,
            reason: "batch is compressed"
        })
    );
}

#[test]
fn known_answer_single_record() {
    let mut builder = BatchBuilder::new();
    builder.push(RecordInput {
        key: Some(b"k"),
        value: Some(b"v"),
        headers: &[],
        timestamp: 1000,
    });
    let batch = builder.build().expect("one record");
    // 61-byte header + record: length 8, attrs 0, ts delta 0, offset delta 0,
    // key len 1 ("k"), value len 1 ("v"), 0 headers.
    assert_eq!(batch.len(), 70);
    assert_eq!(
        &batch[HEADER_LEN..],
        &[0x10, 0x00, 0x00, 0x00, 0x02, b'k', 0x02, b'v', 0x00]
    );
    assert_eq!(&batch[0..8], &0i64.to_be_bytes());
    assert_eq!(
        &batch[field::BATCH_LENGTH..field::BATCH_LENGTH + 4],
        &58i32.to_be_bytes()
    );
    assert_eq!(
        &batch[field::PARTITION_LEADER_EPOCH..field::MAGIC],
        &(-1i32).to_be_bytes()
    );
    assert_eq!(batch[field::MAGIC], 2);
    assert_eq!(&batch[field::ATTRIBUTES..field::ATTRIBUTES + 2], &[0, 0]);
    assert_eq!(
        &batch[field::LAST_OFFSET_DELTA..field::BASE_TIMESTAMP],
        &0i32.to_be_bytes()
    );
    assert_eq!(
        &batch[field::BASE_TIMESTAMP..field::MAX_TIMESTAMP],
        &1000i64.to_be_bytes()
    );
    assert_eq!(
        &batch[field::MAX_TIMESTAMP..field::PRODUCER_ID],
        &1000i64.to_be_bytes()
    );
    assert_eq!(
        &batch[field::PRODUCER_ID..field::PRODUCER_EPOCH],
        &(-1i64).to_be_bytes()
    );
    assert_eq!(
        &batch[field::PRODUCER_EPOCH..field::BASE_SEQUENCE],
        &(-1i16).to_be_bytes()
    );
    assert_eq!(
        &batch[field::BASE_SEQUENCE..field::RECORDS_COUNT],
        &(-1i32).to_be_bytes()
    );
    assert_eq!(
        &batch[field::RECORDS_COUNT..HEADER_LEN],
        &1i32.to_be_bytes()
    );
    let stored = u32::from_be_bytes(batch[field::CRC..field::ATTRIBUTES].try_into().expect("4"));
    assert_eq!(crc32c::crc32c(&batch[field::ATTRIBUTES..]), stored);
    assert_eq!(batch_len_prefix(&batch), Ok(Some(70)));
    let header = validate_batch(&batch).expect("valid");
    check_records(&batch, &header).expect("records");
}

#[test]
fn records_new_ignores_bytes_after_the_batch_and_rejects_short_ones() {
    let records = [OwnedRecord {
        key: None,
        value: Some(b"x".to_vec()),
        headers: vec![],
        timestamp: 0,
    }];
    let mut batch = build(&records);
    let len = batch.len();
    batch.extend_from_slice(&[0xff; 5]);
    assert_eq!(Records::new(&batch).expect("first batch").count(), 1);
    assert!(matches!(
        Records::new(&batch[..len - 1]),
        Err(BatchError::Truncated { .. })
    ));
}

#[test]
fn builder_sets_producer_and_epoch() {
    let mut builder = BatchBuilder::new()
        .with_producer(99, 3, 17)
        .with_partition_leader_epoch(5);
    builder.push(RecordInput {
        timestamp: 7,
        ..RecordInput::default()
    });
    builder.push(RecordInput {
        timestamp: 3,
        ..RecordInput::default()
    });
    assert_eq!(builder.len(), 2);
    let batch = builder.build().expect("two records");
    let header = validate_batch(&batch).expect("valid");
    assert_eq!(header.producer_id, 99);
    assert_eq!(header.producer_epoch, 3);
    assert_eq!(header.base_sequence, 17);
    assert_eq!(header.partition_leader_epoch, 5);
    assert_eq!(header.base_timestamp, 7);
    assert_eq!(header.max_timestamp, 7);
    let ts: Vec<i64> = Records::new(&batch)
        .expect("iterates")
        .map(|r| r.expect("decodes").timestamp(header.base_timestamp))
        .collect();
    assert_eq!(ts, [7, 3]);
}

/// A log cleaner keeps a batch's offset span while dropping records (or all of them): stored
/// batches may count fewer records than their span, produced ones may not.
#[test]
fn stored_batches_may_hold_fewer_records_than_their_span() {
    let two = [raw_record(0), raw_record(2)].concat();
    let compacted = raw_batch(&two, 2, 2);
    assert!(matches!(
        validate_batch(&compacted),
        Err(BatchError::BadRecordCount { .. })
    ));
    let header = validate_stored_batch(&compacted).expect("a compacted batch");
    assert_eq!((header.records_count, header.last_offset()), (2, 2));
    let empty = raw_batch(&[], 0, 4);
    assert_eq!(
        validate_stored_batch(&empty)
            .expect("an emptied batch")
            .records_count,
        0
    );
    assert!(validate_batch(&empty).is_err());
    for (count, delta) in [(3, 1), (-1, 4), (0, -1)] {
        let bad = raw_batch(&[], count, delta);
        assert!(
            matches!(
                validate_stored_batch(&bad),
                Err(BatchError::BadRecordCount { .. })
            ),
            "count {count} delta {delta}"
        );
    }
}
