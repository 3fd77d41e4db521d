//! Across crates: a batch built by `weir-protocol` goes through the broker's log and comes
//! back byte for byte, except the two fields the broker assigns (base offset and partition
//! leader epoch), with the producer's CRC still valid.

use std::sync::Arc;

use weir_broker::log::{FlushPolicy, Flusher, LogConfig, LogOptions, Offset, PartitionLog};
use weir_protocol::record_batch::{
    BatchBuilder, BatchHeader, RecordInput, Records, field, validate_batch,
};

#[test]
fn batches_are_stored_exactly_as_sent() {
    let dir = tempfile::tempdir().unwrap();
    let config = LogConfig {
        flush: FlushPolicy::Os,
        ..LogConfig::default()
    };
    let log = PartitionLog::open(dir.path(), LogOptions::new(config, Flusher::new(1))).unwrap();
    let headers: [(&[u8], Option<&[u8]>); 2] = [(b"trace", Some(b"abc")), (b"empty", None)];
    let mut sent = Vec::new();
    for n in 1..20i32 {
        let mut b = BatchBuilder::new().with_producer(4242, 3, n * 100);
        for i in 0..n {
            let len = usize::try_from(i * 7).unwrap();
            let value = vec![u8::try_from(i).unwrap(); len];
            b.push(RecordInput {
                key: (i % 2 == 0).then_some(b"key".as_slice()),
                value: Some(&value),
                headers: &headers,
                timestamp: 1_700_000_000_000 + i64::from(i),
            });
        }
        let batch = b.build().unwrap();
        let info = log.append(&batch).unwrap();
        sent.push((info.base_offset, batch));
    }
    for (offset, batch) in &sent {
        let read = log.read(*offset, 1).unwrap().records;
        let header = BatchHeader::parse(&read).unwrap();
        let stored = &read[..header.total_len().unwrap()];
        validate_batch(stored).unwrap();
        assert_eq!(header.base_offset, offset.0);
        assert_eq!(header.partition_leader_epoch, 0);
        assert_eq!(
            &stored[field::BATCH_LENGTH..field::PARTITION_LEADER_EPOCH],
            &batch[field::BATCH_LENGTH..field::PARTITION_LEADER_EPOCH]
        );
        assert_eq!(
            &stored[field::MAGIC..],
            &batch[field::MAGIC..],
            "bytes from magic on are untouched"
        );
        let original: Vec<_> = Records::new(batch).unwrap().map(Result::unwrap).collect();
        let returned: Vec<_> = Records::new(stored).unwrap().map(Result::unwrap).collect();
        assert_eq!(original, returned);
    }
    assert_eq!(log.log_end_offset(), Offset((1..20).sum()));
    drop(Arc::clone(&log));
}
