//! What goes in and what comes out: [`ProducerRecord`] and [`RecordMetadata`] (the
//! [`super::DeliveryFuture`] of a send resolves to the latter).

use bytes::Bytes;

/// One record to send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProducerRecord {
    /// The topic.
    pub topic: String,
    /// An explicit partition; `None` lets the producer choose (by key, else sticky).
    pub partition: Option<i32>,
    /// The key: records with the same key go to the same partition.
    pub key: Option<Bytes>,
    /// The value; `None` is a tombstone.
    pub value: Option<Bytes>,
    /// Headers, in order; a `None` value is a null header value.
    pub headers: Vec<(Bytes, Option<Bytes>)>,
    /// Create time in milliseconds since the epoch; `None` takes the time of `send`.
    pub timestamp: Option<i64>,
}

impl ProducerRecord {
    /// A record without key, headers or explicit partition.
    pub fn new(topic: impl Into<String>, value: impl Into<Bytes>) -> Self {
        Self {
            topic: topic.into(),
            partition: None,
            key: None,
            value: Some(value.into()),
            headers: Vec::new(),
            timestamp: None,
        }
    }

    /// Sets the key.
    #[must_use]
    pub fn key(mut self, key: impl Into<Bytes>) -> Self {
        self.key = Some(key.into());
        self
    }

    /// Sends to this partition instead of choosing one.
    #[must_use]
    pub fn partition(mut self, partition: i32) -> Self {
        self.partition = Some(partition);
        self
    }

    /// Adds a header.
    #[must_use]
    pub fn header(mut self, key: impl Into<Bytes>, value: Option<Bytes>) -> Self {
        self.headers.push((key.into(), value));
        self
    }

    /// Sets the create time (ms since the epoch).
    #[must_use]
    pub fn timestamp(mut self, timestamp_ms: i64) -> Self {
        self.timestamp = Some(timestamp_ms);
        self
    }

    /// An upper bound of the record's encoded size inside a batch: every varint counted at
    /// its largest. Buffer memory and batch sizes are accounted with it.
    pub fn size_bound(&self) -> usize {
        /// Length, attributes, timestamp delta, offset delta, key and value lengths, header
        /// count, each at its largest.
        const FIXED: usize = 5 + 1 + 10 + 5 + 5 + 5 + 5;
        let len = |b: &Option<Bytes>| b.as_ref().map_or(0, Bytes::len);
        let headers: usize = self
            .headers
            .iter()
            .map(|(k, v)| 10usize.saturating_add(k.len()).saturating_add(len(v)))
            .fold(0, usize::saturating_add);
        FIXED
            .saturating_add(len(&self.key))
            .saturating_add(len(&self.value))
            .saturating_add(headers)
    }
}

/// Where a record landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordMetadata {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The record's offset; -1 with `acks=0`, where the broker does not say.
    pub offset: i64,
    /// The create time the record was sent with (ms since the epoch).
    pub timestamp: i64,
}

#[cfg(test)]
mod tests {
    use weir_protocol::record_batch::{BatchBuilder, HEADER_LEN, RecordInput};

    use super::*;

    #[test]
    fn the_size_bound_is_never_below_the_encoded_size() {
        let records = [
            ProducerRecord::new("t", Bytes::new()),
            ProducerRecord::new("t", vec![7; 300]).key(vec![1; 200]),
            ProducerRecord::new("t", vec![7; 70_000])
                .header("h", Some(Bytes::from_static(b"v")))
                .header(vec![0; 130], None),
        ];
        for record in records {
            let headers: Vec<(&[u8], Option<&[u8]>)> = record
                .headers
                .iter()
                .map(|(k, v)| (k.as_ref(), v.as_deref()))
                .collect();
            let mut builder = BatchBuilder::new();
            builder.push(RecordInput {
                key: record.key.as_deref(),
                value: record.value.as_deref(),
                headers: &headers,
                timestamp: i64::MAX,
            });
            assert!(builder.size_in_bytes() - HEADER_LEN <= record.size_bound());
        }
    }
}
