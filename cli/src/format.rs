//! How `weir consume` prints a record: the value alone, key and value, or one JSON object.
//! Bytes that are not UTF-8 are written raw in the value and kv formats and as
//! `{"base64": "..."}` in JSON (standard alphabet, padded; the `base64` crate), which has
//! no byte strings.

use std::io::{self, Write};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::{Value, json};
use weir_client::ConsumerRecord;

use crate::args::Format;

/// Writes `record` and a newline.
///
/// # Errors
/// Writing to `out` failed.
pub(crate) fn write_record(
    out: &mut impl Write,
    record: &ConsumerRecord,
    format: Format,
    key_separator: &str,
) -> io::Result<()> {
    match format {
        Format::Value => {
            out.write_all(record.value.as_deref().unwrap_or_default())?;
        }
        Format::Kv => {
            out.write_all(record.key.as_deref().unwrap_or_default())?;
            out.write_all(key_separator.as_bytes())?;
            out.write_all(record.value.as_deref().unwrap_or_default())?;
        }
        Format::Json => {
            write_json(out, record)?;
        }
    }
    out.write_all(b"\n")
}

/// Writes the JSON form of a record, fields in a fixed order (topic, partition, offset,
/// timestamp, key, value, headers) so that the output is stable.
fn write_json(out: &mut impl Write, record: &ConsumerRecord) -> io::Result<()> {
    let headers: Vec<Value> = record
        .headers
        .iter()
        .map(|h| json!({"key": h.key, "value": bytes(h.value.as_deref())}))
        .collect();
    let fields: [(&str, Value); 7] = [
        ("topic", json!(&*record.topic)),
        ("partition", json!(record.partition)),
        ("offset", json!(record.offset)),
        ("timestamp", json!(record.timestamp)),
        ("key", bytes(record.key.as_deref())),
        ("value", bytes(record.value.as_deref())),
        ("headers", Value::Array(headers)),
    ];
    out.write_all(b"{")?;
    for (i, (name, value)) in fields.iter().enumerate() {
        if i > 0 {
            out.write_all(b",")?;
        }
        write!(out, "\"{name}\":")?;
        serde_json::to_writer(&mut *out, value).map_err(io::Error::other)?;
    }
    out.write_all(b"}")
}

fn bytes(b: Option<&[u8]>) -> Value {
    match b {
        None => Value::Null,
        Some(b) => match std::str::from_utf8(b) {
            Ok(s) => Value::String(s.to_owned()),
            Err(_) => json!({ "base64": BASE64.encode(b) }),
        },
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use weir_client::consumer::RecordHeader;

    use super::*;

    fn record() -> ConsumerRecord {
        ConsumerRecord {
            topic: "t".into(),
            partition: 2,
            offset: 7,
            timestamp: 1_700_000_000_000,
            key: Some(Bytes::from_static(b"k")),
            value: Some(Bytes::from_static(b"v\xff")),
            headers: vec![RecordHeader {
                key: "h".into(),
                value: None,
            }],
        }
    }

    fn render(format: Format) -> Vec<u8> {
        let mut out = Vec::new();
        write_record(&mut out, &record(), format, ":").expect("write to a Vec");
        out
    }

    #[test]
    fn value_and_kv_write_the_bytes_as_they_are() {
        assert_eq!(render(Format::Value), b"v\xff\n");
        assert_eq!(render(Format::Kv), b"k:v\xff\n");
    }

    #[test]
    fn json_carries_every_field_and_base64_for_non_utf8() {
        let line = String::from_utf8(render(Format::Json)).expect("json is utf-8");
        assert_eq!(
            line,
            "{\"topic\":\"t\",\"partition\":2,\"offset\":7,\"timestamp\":1700000000000,\
             \"key\":\"k\",\"value\":{\"base64\":\"dv8=\"},\"headers\":[{\"key\":\"h\",\"value\":null}]}\n"
        );
    }

    #[test]
    fn non_utf8_bytes_are_standard_padded_base64() {
        // RFC 4648's vectors, each with a byte that is not UTF-8 in front.
        for (input, want) in [
            (&b"\xff"[..], "/w=="),
            (b"\xfff", "/2Y="),
            (b"\xfffo", "/2Zv"),
            (b"\xfffoobar", "/2Zvb2Jhcg=="),
        ] {
            assert_eq!(bytes(Some(input)), json!({ "base64": want }));
        }
        assert_eq!(bytes(None), Value::Null);
    }
}
