//! Zigzag varints (Protocol Buffers style), as used for record fields inside a v2 batch.
//!
//! Decoders return `None` on a truncated or over-long encoding instead of panicking: an `i32`
//! varint takes at most 5 bytes, an `i64` at most 10. Bits that would not fit in the target
//! type (in the last allowed byte) are an overflow and also give `None`. Non-minimal encodings
//! that stay within the byte limit (for example `0x80 0x00` for zero) are accepted, as the Java
//! client does.
//!
//! Why our own and not `kafka-protocol`'s `VarInt`/`VarLong`: theirs accept a fifth (or
//! tenth) byte that still asks for more and drop the overflowing bits silently, so a damaged
//! record would decode to a wrong value instead of an error; and they go through `Result`
//! with an `anyhow` error per field, on the hot path of iterating records. These are a few
//! lines, strict, allocation-free and property-tested against the encoder.

use bytes::BufMut;

/// Maximum encoded size of an `i32` varint.
pub const MAX_VARINT_LEN: usize = 5;
/// Maximum encoded size of an `i64` varlong.
pub const MAX_VARLONG_LEN: usize = 10;

/// Decodes a zigzag varint from the start of `buf`.
///
/// Returns the value and the number of bytes consumed, or `None` when `buf` ends before the
/// last byte, the encoding is longer than 5 bytes, or it carries bits beyond 32.
pub fn decode_varint(buf: &[u8]) -> Option<(i32, usize)> {
    let mut raw: u32 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARINT_LEN).enumerate() {
        // The fifth byte holds bits 28..32: only its low four bits may be set, and it must
        // not ask for a sixth byte.
        if i == MAX_VARINT_LEN - 1 && byte > 0x0f {
            return None;
        }
        raw |= u32::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((zigzag_decode_32(raw), i + 1));
        }
    }
    None
}

/// Decodes a zigzag varlong from the start of `buf`.
///
/// Returns the value and the number of bytes consumed, or `None` when `buf` ends before the
/// last byte, the encoding is longer than 10 bytes, or it carries bits beyond 64.
pub fn decode_varlong(buf: &[u8]) -> Option<(i64, usize)> {
    let mut raw: u64 = 0;
    for (i, &byte) in buf.iter().take(MAX_VARLONG_LEN).enumerate() {
        // The tenth byte holds bit 63 only.
        if i == MAX_VARLONG_LEN - 1 && byte > 0x01 {
            return None;
        }
        raw |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            return Some((zigzag_decode_64(raw), i + 1));
        }
    }
    None
}

/// Appends the zigzag varint encoding of `value` (1 to 5 bytes) to `out`.
pub fn encode_varint(value: i32, out: &mut impl BufMut) {
    let mut raw = zigzag_encode_32(value);
    while raw >= 0x80 {
        out.put_u8(raw.to_le_bytes()[0] | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw.to_le_bytes()[0]);
}

/// Appends the zigzag varlong encoding of `value` (1 to 10 bytes) to `out`.
pub fn encode_varlong(value: i64, out: &mut impl BufMut) {
    let mut raw = zigzag_encode_64(value);
    while raw >= 0x80 {
        out.put_u8(raw.to_le_bytes()[0] | 0x80);
        raw >>= 7;
    }
    out.put_u8(raw.to_le_bytes()[0]);
}

/// Number of bytes [`encode_varint`] writes for `value`.
pub fn varint_len(value: i32) -> usize {
    let bits = u32::BITS - (zigzag_encode_32(value) | 1).leading_zeros();
    groups(bits)
}

/// Number of bytes [`encode_varlong`] writes for `value`.
pub fn varlong_len(value: i64) -> usize {
    let bits = u64::BITS - (zigzag_encode_64(value) | 1).leading_zeros();
    groups(bits)
}

/// Number of 7-bit groups needed for `bits` significant bits (`bits` is 1 to 64, so the
/// result is 1 to 10).
fn groups(bits: u32) -> usize {
    // Callers OR the zigzag value with 1, so `bits >= 1` and the result is 1 to 10.
    usize::try_from(bits.div_ceil(7)).unwrap_or(MAX_VARLONG_LEN)
}

fn zigzag_encode_32(value: i32) -> u32 {
    // Same-width reinterpretation: the zigzag result is a bit pattern, not a number.
    ((value << 1) ^ (value >> 31)) as u32
}

fn zigzag_encode_64(value: i64) -> u64 {
    ((value << 1) ^ (value >> 63)) as u64
}

fn zigzag_decode_32(raw: u32) -> i32 {
    ((raw >> 1) ^ (raw & 1).wrapping_neg()) as i32
}

fn zigzag_decode_64(raw: u64) -> i64 {
    ((raw >> 1) ^ (raw & 1).wrapping_neg()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn enc32(v: i32) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varint(v, &mut out);
        out
    }

    fn enc64(v: i64) -> Vec<u8> {
        let mut out = Vec::new();
        encode_varlong(v, &mut out);
        out
    }

    #[test]
    fn known_encodings() {
        assert_eq!(enc32(0), [0x00]);
        assert_eq!(enc32(-1), [0x01]);
        assert_eq!(enc32(1), [0x02]);
        assert_eq!(enc32(-64), [0x7f]);
        assert_eq!(enc32(64), [0x80, 0x01]);
        assert_eq!(enc32(150), [0xac, 0x02]);
        assert_eq!(enc32(i32::MAX), [0xfe, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(enc32(i32::MIN), [0xff, 0xff, 0xff, 0xff, 0x0f]);
        assert_eq!(
            enc64(i64::MAX),
            [0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
        assert_eq!(
            enc64(i64::MIN),
            [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01]
        );
    }

    #[test]
    fn boundaries_round_trip() {
        let values32 = [
            0,
            1,
            -1,
            63,
            -64,
            64,
            -65,
            8191,
            -8192,
            8192,
            -8193,
            (1 << 20) - 1,
            1 << 20,
            -(1 << 20),
            -(1 << 20) - 1,
            (1 << 27) - 1,
            1 << 27,
            i32::MAX,
            i32::MIN,
            i32::MAX - 1,
            i32::MIN + 1,
        ];
        for v in values32 {
            let bytes = enc32(v);
            assert_eq!(bytes.len(), varint_len(v), "len of {v}");
            assert_eq!(decode_varint(&bytes), Some((v, bytes.len())), "value {v}");
            // Also as a varlong: Kafka uses the same zigzag for both widths.
            let long = enc64(i64::from(v));
            assert_eq!(long, bytes, "varlong of {v}");
        }
        let values64 = [
            0,
            1,
            -1,
            i64::from(i32::MAX) + 1,
            i64::from(i32::MIN) - 1,
            (1 << 62) - 1,
            1 << 62,
            -(1 << 62),
            -(1 << 62) - 1,
            i64::MAX,
            i64::MIN,
        ];
        for v in values64 {
            let bytes = enc64(v);
            assert_eq!(bytes.len(), varlong_len(v), "len of {v}");
            assert_eq!(decode_varlong(&bytes), Some((v, bytes.len())), "value {v}");
        }
    }

    #[test]
    fn lengths() {
        assert_eq!(varint_len(0), 1);
        assert_eq!(varint_len(-64), 1);
        assert_eq!(varint_len(64), 2);
        assert_eq!(varint_len(i32::MAX), 5);
        assert_eq!(varint_len(i32::MIN), 5);
        assert_eq!(varlong_len(0), 1);
        assert_eq!(varlong_len(i64::MAX), 10);
        assert_eq!(varlong_len(i64::MIN), 10);
        assert_eq!(varlong_len(i64::from(i32::MIN)), 5);
    }

    #[test]
    fn decode_stops_at_end_of_varint() {
        assert_eq!(decode_varint(&[0xac, 0x02, 0xff, 0xff]), Some((150, 2)));
        assert_eq!(decode_varlong(&[0x02, 0x80]), Some((1, 1)));
    }

    #[test]
    fn truncated() {
        assert_eq!(decode_varint(&[]), None);
        assert_eq!(decode_varlong(&[]), None);
        assert_eq!(decode_varint(&[0x80]), None);
        assert_eq!(decode_varint(&[0xff, 0xff, 0xff, 0xff]), None);
        assert_eq!(decode_varlong(&[0xff; 9]), None);
        for v in [i32::MIN, -65, 64, i32::MAX] {
            let bytes = enc32(v);
            for cut in 0..bytes.len() {
                assert_eq!(decode_varint(&bytes[..cut]), None, "{v} cut at {cut}");
            }
        }
        for v in [i64::MIN, i64::MAX, 1 << 40] {
            let bytes = enc64(v);
            for cut in 0..bytes.len() {
                assert_eq!(decode_varlong(&bytes[..cut]), None, "{v} cut at {cut}");
            }
        }
    }

    #[test]
    fn too_long_or_overflowing() {
        // Six bytes for an i32.
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x80, 0x00]), None);
        // Fifth byte with bits beyond 32.
        assert_eq!(decode_varint(&[0xff, 0xff, 0xff, 0xff, 0x1f]), None);
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x10]), None);
        // Eleven bytes for an i64.
        let mut eleven = [0x80u8; 11];
        eleven[10] = 0x00;
        assert_eq!(decode_varlong(&eleven), None);
        // Tenth byte with bits beyond 64.
        let mut ten = [0xffu8; 10];
        ten[9] = 0x02;
        assert_eq!(decode_varlong(&ten), None);
        // An i64 value does not fit an i32 varint.
        assert_eq!(decode_varint(&enc64(i64::from(i32::MAX) + 1)), None);
    }

    #[test]
    fn non_minimal_encoding_is_accepted() {
        assert_eq!(decode_varint(&[0x80, 0x00]), Some((0, 2)));
        assert_eq!(decode_varint(&[0x80, 0x80, 0x80, 0x80, 0x00]), Some((0, 5)));
        assert_eq!(decode_varlong(&[0x81, 0x80, 0x00]), Some((-1, 3)));
    }

    #[test]
    fn exhaustive_small_range() {
        for v in -70_000..70_000 {
            let bytes = enc32(v);
            assert_eq!(decode_varint(&bytes), Some((v, bytes.len())));
            assert_eq!(decode_varlong(&bytes), Some((i64::from(v), bytes.len())));
        }
    }
}
