//! `weir_protocol::compression::decompress`, the client's bounded decompression of a fetched
//! batch's records, on untrusted bytes with every codec and a small limit.
//!
//! Input: byte 0 picks the codec (None, gzip, Snappy, LZ4, zstd, modulo 5); bytes 1-2 are the
//! limit (big-endian, 0 to 65,535 bytes); the rest is the compressed data. Checks:
//!
//! - never a panic or an abort, and (with `-malloc_limit_mb`) no allocation above the limit
//!   given to libFuzzer;
//! - `Ok` holds at most `limit` bytes; an error names the codec it was called with, a
//!   `TooLarge` error names the limit it was called with, and no codec is `Disabled` (the
//!   fuzz crate builds weir-protocol with every codec);
//! - the limit only decides between `Ok` and `TooLarge`: what decompresses within `limit`
//!   decompresses to the same bytes with a larger limit, and to `TooLarge` with a limit one
//!   byte below its length;
//! - what decompresses compresses again and round-trips to the same bytes.

#![no_main]

use libfuzzer_sys::fuzz_target;
use weir_protocol::compression::{CompressionError, compress, decompress};
use weir_protocol::record_batch::Compression;

const CODECS: [Compression; 5] = Compression::ALL;

/// Checks that `result` is a valid outcome of `decompress(codec, _, limit)`.
fn check(codec: Compression, limit: usize, result: &Result<Vec<u8>, CompressionError>) {
    match result {
        Ok(out) => assert!(
            out.len() <= limit,
            "{codec:?}: {} bytes out with a limit of {limit}",
            out.len()
        ),
        Err(CompressionError::TooLarge { codec: c, limit: l }) => {
            assert_eq!((*c, *l), (codec, limit), "TooLarge names its call");
        }
        Err(CompressionError::Codec { codec: c, .. }) => assert_eq!(*c, codec),
        Err(err) => panic!("{codec:?}: unexpected error {err}"),
    }
}

fuzz_target!(|input: &[u8]| {
    let [selector, hi, lo, data @ ..] = input else {
        return;
    };
    let codec = CODECS[usize::from(*selector) % CODECS.len()];
    let limit = usize::from(u16::from_be_bytes([*hi, *lo]));

    let result = decompress(codec, data, limit);
    check(codec, limit, &result);
    let Ok(out) = result else {
        return;
    };

    let larger = limit * 2 + 1;
    let again = decompress(codec, data, larger);
    check(codec, larger, &again);
    assert_eq!(
        again.ok().as_ref(),
        Some(&out),
        "{codec:?}: a larger limit changed the output"
    );

    if let Some(below) = out.len().checked_sub(1) {
        let cut = decompress(codec, data, below);
        check(codec, below, &cut);
        assert!(
            matches!(cut, Err(CompressionError::TooLarge { .. })),
            "{codec:?}: {} bytes with a limit of {below}: {cut:?}",
            out.len()
        );
    }

    let packed = compress(codec, &out).expect("any bytes compress");
    let unpacked = decompress(codec, &packed, out.len()).expect("our own output decompresses");
    assert_eq!(unpacked, out, "{codec:?}: round trip");
});
