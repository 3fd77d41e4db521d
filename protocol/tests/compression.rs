//! Property tests of the batch codecs: any bytes round-trip through every codec, and
//! decompression of any input (valid or not) with any limit yields at most that many bytes or
//! an error. The fixed cases (bombs, xerial framing, raw Snappy) are the unit tests in
//! `src/compression.rs`; `fuzz/fuzz_targets/decompress.rs` runs the second property under
//! libFuzzer.
#![cfg(feature = "compression")]

use proptest::prelude::*;
use weir_protocol::compression::{CompressionError, compress, decompress};
use weir_protocol::record_batch::Compression;

const CODECS: [Compression; 5] = Compression::ALL;

fn codec() -> impl Strategy<Value = Compression> {
    prop::sample::select(CODECS.to_vec())
}

/// Repetitive data (compressible) or noise.
fn data() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(any::<u8>(), 0..4096),
        (any::<u8>(), 0usize..100_000).prop_map(|(byte, len)| vec![byte; len]),
        (prop::collection::vec(any::<u8>(), 1..16), 0usize..2000).prop_map(|(unit, n)| unit
            .iter()
            .copied()
            .cycle()
            .take(unit.len() * n)
            .collect()),
    ]
}

proptest! {
    #[test]
    fn any_bytes_round_trip(codec in codec(), data in data()) {
        let packed = compress(codec, &data).unwrap();
        prop_assert_eq!(&decompress(codec, &packed, data.len()).unwrap(), &data);
        if !data.is_empty() {
            let err = decompress(codec, &packed, data.len() - 1).unwrap_err();
            let is_too_large = matches!(err, CompressionError::TooLarge { .. });
            prop_assert!(is_too_large, "{:?}: {}", codec, err);
        }
    }

    #[test]
    fn decompression_stays_within_its_limit(
        codec in codec(),
        data in data(),
        limit in 0usize..70_000,
        damage in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..4),
    ) {
        // Compressed bytes with a few bytes overwritten: past the magic numbers and headers,
        // into the codecs' block parsers.
        let mut packed = compress(codec, &data).unwrap();
        for (at, byte) in &damage {
            if !packed.is_empty() {
                let i = at.index(packed.len());
                packed[i] = *byte;
            }
        }
        if let Ok(out) = decompress(codec, &packed, limit) {
            prop_assert!(out.len() <= limit, "{:?}: {} > {}", codec, out.len(), limit);
        }
        // And the raw input, as if it were compressed.
        if let Ok(out) = decompress(codec, &data, limit) {
            prop_assert!(out.len() <= limit, "{:?}: {} > {}", codec, out.len(), limit);
        }
    }
}
