//! The record-batch codecs, as Kafka uses them: gzip, Snappy, LZ4 and Zstandard.
//!
//! [`compress`] turns the records section of a v2 batch (everything after the 61-byte header)
//! into its compressed form; [`decompress`] turns it back, refusing to produce more than a
//! caller-given number of bytes so that a small hostile batch cannot exhaust memory. Both are
//! pure functions over in-memory bytes (the `std::io` traits here only drive the codecs'
//! streaming decoders over slices). The broker stores batches as sent and never calls them;
//! the client does, and so would any broker code that must look inside a compressed batch.
//!
//! Formats, matching the Java client and librdkafka:
//!
//! - gzip: a gzip stream (RFC 1952); concatenated members are read as one stream.
//! - Snappy: written in the xerial framing the Java client uses (magic `0x82 SNAPPY 0x00`,
//!   two version ints, then blocks of at most 32 KiB, each a 4-byte big-endian length and a
//!   raw Snappy block). Read in that framing or as one raw Snappy block (librdkafka's default).
//! - LZ4: the LZ4 frame format. The broken header checksum of Kafka's pre-0.10 LZ4 framing
//!   only concerns message format v0/v1, which Weir never reads.
//! - Zstandard: a zstd frame.
//!
//! Each codec is behind a cargo feature (`compression-gzip`, `compression-snappy`,
//! `compression-lz4`, `compression-zstd`; `compression`, the default, turns on all four).
//! A codec whose feature is off fails with [`CompressionError::Disabled`]; no compression
//! ([`Compression::None`]) is always available.
//!
//! Invariant: [`decompress`] never returns more than `max_size` bytes, and never sizes a
//! buffer from a length in the input beyond `max_size` (a raw Snappy block's declared length
//! is checked before allocating; the streaming decoders are read through a `take` bound).

use std::io;

use crate::record_batch::Compression;

/// The default bound on one decompressed batch: 100 MiB.
pub const DEFAULT_MAX_DECOMPRESSED: usize = 100 * 1024 * 1024;

/// Why a codec failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CompressionError {
    /// Decompressing would produce more than the allowed number of bytes.
    #[error("{codec:?} data decompresses to more than {limit} bytes")]
    TooLarge {
        /// The codec.
        codec: Compression,
        /// The bound that was exceeded.
        limit: usize,
    },
    /// The compressed bytes are malformed, or the encoder failed.
    #[error("{codec:?} codec failed: {source}")]
    Codec {
        /// The codec.
        codec: Compression,
        /// What the codec reported.
        #[source]
        source: io::Error,
    },
    /// This build of `weir-protocol` leaves the codec out (its cargo feature is off).
    #[error("{codec:?} is not compiled in (cargo feature {feature} of weir-protocol)")]
    Disabled {
        /// The codec.
        codec: Compression,
        /// The feature that would provide it.
        feature: &'static str,
    },
}

impl CompressionError {
    #[cfg_attr(
        not(any(
            feature = "compression-gzip",
            feature = "compression-snappy",
            feature = "compression-lz4",
            feature = "compression-zstd"
        )),
        allow(dead_code)
    )]
    fn codec(codec: Compression, source: impl Into<io::Error>) -> Self {
        Self::Codec {
            codec,
            source: source.into(),
        }
    }
}

/// Compresses `data` with `codec`. [`Compression::None`] returns a copy.
///
/// Only fails in situations the encoders cannot handle (Snappy input over 4 GiB, for
/// instance), or for a codec left out of this build; a producer then sends the batch
/// uncompressed.
pub fn compress(codec: Compression, data: &[u8]) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => Ok(data.to_vec()),
        Compression::Gzip => gzip::compress(data),
        Compression::Snappy => snappy::compress(data),
        Compression::Lz4 => lz4::compress(data),
        Compression::Zstd => zstd::compress(data),
    }
}

/// Decompresses `data` written with `codec`, failing with [`CompressionError::TooLarge`]
/// rather than producing more than `max_size` bytes. [`Compression::None`] returns a copy
/// (subject to the same bound).
pub fn decompress(
    codec: Compression,
    data: &[u8],
    max_size: usize,
) -> Result<Vec<u8>, CompressionError> {
    match codec {
        Compression::None => {
            if data.len() > max_size {
                return Err(CompressionError::TooLarge {
                    codec,
                    limit: max_size,
                });
            }
            Ok(data.to_vec())
        }
        Compression::Gzip => gzip::decompress(data, max_size),
        Compression::Snappy => snappy::decompress(data, max_size),
        Compression::Lz4 => lz4::decompress(data, max_size),
        Compression::Zstd => zstd::decompress(data, max_size),
    }
}

/// Reads `reader` to its end, or fails once it yields more than `max_size` bytes.
#[cfg(any(
    feature = "compression-gzip",
    feature = "compression-lz4",
    feature = "compression-zstd"
))]
fn read_bounded(
    codec: Compression,
    reader: impl io::Read,
    max_size: usize,
) -> Result<Vec<u8>, CompressionError> {
    use std::io::Read as _;

    let mut out = Vec::new();
    let limit = u64::try_from(max_size)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    reader
        .take(limit)
        .read_to_end(&mut out)
        .map_err(|e| CompressionError::codec(codec, e))?;
    if out.len() > max_size {
        return Err(CompressionError::TooLarge {
            codec,
            limit: max_size,
        });
    }
    Ok(out)
}

/// The stand-in for a codec whose feature is off.
#[cfg(not(all(
    feature = "compression-gzip",
    feature = "compression-snappy",
    feature = "compression-lz4",
    feature = "compression-zstd"
)))]
macro_rules! disabled_codec {
    ($codec:expr, $feature:literal) => {
        pub(super) fn compress(_data: &[u8]) -> Result<Vec<u8>, CompressionError> {
            Err(CompressionError::Disabled {
                codec: $codec,
                feature: $feature,
            })
        }

        pub(super) fn decompress(
            _data: &[u8],
            _max_size: usize,
        ) -> Result<Vec<u8>, CompressionError> {
            Err(CompressionError::Disabled {
                codec: $codec,
                feature: $feature,
            })
        }
    };
}

#[cfg(feature = "compression-gzip")]
mod gzip {
    use std::io::{self, Write as _};

    use super::{Compression, CompressionError, read_bounded};

    const CODEC: Compression = Compression::Gzip;

    pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, CompressionError> {
        let err = |e: io::Error| CompressionError::codec(CODEC, e);
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        encoder.write_all(data).map_err(err)?;
        encoder.finish().map_err(err)
    }

    pub(super) fn decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>, CompressionError> {
        read_bounded(CODEC, flate2::read::MultiGzDecoder::new(data), max_size)
    }
}

#[cfg(not(feature = "compression-gzip"))]
mod gzip {
    use super::{Compression, CompressionError};
    disabled_codec!(Compression::Gzip, "compression-gzip");
}

#[cfg(feature = "compression-lz4")]
mod lz4 {
    use std::io::{self, Write as _};

    use super::{Compression, CompressionError, read_bounded};

    const CODEC: Compression = Compression::Lz4;

    pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, CompressionError> {
        let mut encoder = lz4_flex::frame::FrameEncoder::new(Vec::new());
        encoder
            .write_all(data)
            .map_err(|e| CompressionError::codec(CODEC, e))?;
        encoder
            .finish()
            .map_err(|e| CompressionError::codec(CODEC, io::Error::other(e)))
    }

    pub(super) fn decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>, CompressionError> {
        read_bounded(CODEC, lz4_flex::frame::FrameDecoder::new(data), max_size)
    }
}

#[cfg(not(feature = "compression-lz4"))]
mod lz4 {
    use super::{Compression, CompressionError};
    disabled_codec!(Compression::Lz4, "compression-lz4");
}

#[cfg(feature = "compression-zstd")]
mod zstd {
    use super::{Compression, CompressionError, read_bounded};

    const CODEC: Compression = Compression::Zstd;

    pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, CompressionError> {
        ::zstd::bulk::compress(data, ::zstd::DEFAULT_COMPRESSION_LEVEL)
            .map_err(|e| CompressionError::codec(CODEC, e))
    }

    pub(super) fn decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>, CompressionError> {
        let decoder = ::zstd::stream::read::Decoder::with_buffer(data)
            .map_err(|e| CompressionError::codec(CODEC, e))?;
        read_bounded(CODEC, decoder, max_size)
    }
}

#[cfg(not(feature = "compression-zstd"))]
mod zstd {
    use super::{Compression, CompressionError};
    disabled_codec!(Compression::Zstd, "compression-zstd");
}

#[cfg(feature = "compression-snappy")]
mod snappy {
    use std::io;

    use super::{Compression, CompressionError};

    const CODEC: Compression = Compression::Snappy;
    /// The xerial Snappy stream magic.
    pub(super) const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
    /// Magic, version and compatible version.
    const XERIAL_HEADER_LEN: usize = 16;
    /// Uncompressed bytes per xerial block, as the Java client writes them.
    pub(super) const XERIAL_BLOCK: usize = 32 * 1024;

    pub(super) fn compress(data: &[u8]) -> Result<Vec<u8>, CompressionError> {
        xerial_compress(data).map_err(|e| CompressionError::codec(CODEC, e))
    }

    /// Xerial framing: header, then `[len: i32 BE][raw snappy block]` per 32 KiB of input.
    fn xerial_compress(data: &[u8]) -> Result<Vec<u8>, snap::Error> {
        let mut out = Vec::with_capacity(XERIAL_HEADER_LEN + data.len() / 2);
        out.extend_from_slice(&XERIAL_MAGIC);
        out.extend_from_slice(&1i32.to_be_bytes());
        out.extend_from_slice(&1i32.to_be_bytes());
        let mut encoder = snap::raw::Encoder::new();
        let mut block = vec![0u8; snap::raw::max_compress_len(XERIAL_BLOCK)];
        for chunk in data.chunks(XERIAL_BLOCK) {
            let n = encoder.compress(chunk, &mut block)?;
            // `n` is at most `max_compress_len(32 KiB)`, far below i32::MAX.
            let len = i32::try_from(n).unwrap_or(i32::MAX);
            out.extend_from_slice(&len.to_be_bytes());
            out.extend_from_slice(block.get(..n).unwrap_or_default());
        }
        Ok(out)
    }

    /// Xerial-framed or raw Snappy, bounded by `max_size`.
    pub(super) fn decompress(data: &[u8], max_size: usize) -> Result<Vec<u8>, CompressionError> {
        let codec = CODEC;
        let too_large = CompressionError::TooLarge {
            codec,
            limit: max_size,
        };
        let corrupt = |reason: &str| CompressionError::codec(codec, io::Error::other(reason));
        let snap_err = |e: snap::Error| CompressionError::codec(codec, e);
        let mut decoder = snap::raw::Decoder::new();

        if !data.starts_with(&XERIAL_MAGIC) {
            // One raw block; its declared length is checked before anything is allocated.
            if snap::raw::decompress_len(data).map_err(snap_err)? > max_size {
                return Err(too_large);
            }
            return decoder.decompress_vec(data).map_err(snap_err);
        }

        let mut rest = data
            .get(XERIAL_HEADER_LEN..)
            .ok_or_else(|| corrupt("truncated xerial header"))?;
        let mut out = Vec::new();
        while !rest.is_empty() {
            let (len, tail) = rest
                .split_first_chunk::<4>()
                .ok_or_else(|| corrupt("truncated xerial block length"))?;
            let len = usize::try_from(i32::from_be_bytes(*len))
                .map_err(|_negative| corrupt("negative xerial block length"))?;
            let block = tail
                .get(..len)
                .ok_or_else(|| corrupt("xerial block past the end of the data"))?;
            rest = tail.get(len..).unwrap_or_default();
            let block_len = snap::raw::decompress_len(block).map_err(snap_err)?;
            let start = out.len();
            let end = start.checked_add(block_len).filter(|&end| end <= max_size);
            let Some(end) = end else {
                return Err(too_large);
            };
            out.resize(end, 0);
            let slot = out.get_mut(start..).unwrap_or_default();
            let written = decoder.decompress(block, slot).map_err(snap_err)?;
            out.truncate(start + written);
        }
        Ok(out)
    }
}

#[cfg(not(feature = "compression-snappy"))]
mod snappy {
    use super::{Compression, CompressionError};
    disabled_codec!(Compression::Snappy, "compression-snappy");
}

#[cfg(all(
    test,
    feature = "compression-gzip",
    feature = "compression-snappy",
    feature = "compression-lz4",
    feature = "compression-zstd"
))]
mod tests {
    use super::snappy::{XERIAL_BLOCK, XERIAL_MAGIC};
    use super::*;

    const CODECS: [Compression; 5] = Compression::ALL;

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| b"the quick brown fox "[i % 20] ^ u8::try_from(i / 997 % 7).unwrap())
            .collect()
    }

    #[test]
    fn every_codec_round_trips() {
        for codec in CODECS {
            for len in [0, 1, 100, XERIAL_BLOCK, XERIAL_BLOCK + 1, 200_000] {
                let data = sample(len);
                let packed = compress(codec, &data).unwrap();
                if codec != Compression::None && len >= 100 {
                    assert!(packed.len() < data.len(), "{codec:?} {len}");
                }
                let unpacked = decompress(codec, &packed, len).unwrap();
                assert_eq!(unpacked, data, "{codec:?} {len}");
            }
        }
    }

    #[test]
    fn decompression_is_bounded() {
        // 10 MiB of zeros compresses to almost nothing: a small bomb.
        let zeros = vec![0u8; 10 * 1024 * 1024];
        for codec in CODECS {
            let packed = compress(codec, &zeros).unwrap();
            let err = decompress(codec, &packed, 1024 * 1024).unwrap_err();
            assert!(
                matches!(err, CompressionError::TooLarge { limit, .. } if limit == 1024 * 1024),
                "{codec:?}: {err}"
            );
            // Exactly at the bound is fine.
            assert_eq!(
                decompress(codec, &packed, zeros.len()).unwrap().len(),
                zeros.len()
            );
        }
        // A raw snappy block is refused from its declared length alone.
        let raw = snap::raw::Encoder::new().compress_vec(&zeros).unwrap();
        assert!(matches!(
            decompress(Compression::Snappy, &raw, 1000),
            Err(CompressionError::TooLarge { .. })
        ));
    }

    #[test]
    fn snappy_reads_raw_blocks() {
        let data = sample(70_000);
        let raw = snap::raw::Encoder::new().compress_vec(&data).unwrap();
        assert_eq!(
            decompress(Compression::Snappy, &raw, data.len()).unwrap(),
            data
        );
    }

    #[test]
    fn snappy_reads_a_hand_built_xerial_stream() {
        // As the Java client writes it: magic, version 1, compatible version 1, then blocks.
        let parts: [&[u8]; 3] = [b"hello, ", b"xerial ", b"snappy"];
        let mut framed = vec![
            0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0, 0, 0, 0, 1, 0, 0, 0, 1,
        ];
        for part in parts {
            let block = snap::raw::Encoder::new().compress_vec(part).unwrap();
            framed.extend_from_slice(&u32::try_from(block.len()).unwrap().to_be_bytes());
            framed.extend_from_slice(&block);
        }
        let out = decompress(Compression::Snappy, &framed, 1000).unwrap();
        assert_eq!(out, b"hello, xerial snappy");
        // Our own encoder writes the same framing.
        assert!(
            compress(Compression::Snappy, b"abc")
                .unwrap()
                .starts_with(&XERIAL_MAGIC)
        );

        // Truncated block, negative length, bad block: errors, no panic.
        let cut = &framed[..framed.len() - 2];
        assert!(decompress(Compression::Snappy, cut, 1000).is_err());
        let mut negative = framed[..16].to_vec();
        negative.extend_from_slice(&(-1i32).to_be_bytes());
        assert!(decompress(Compression::Snappy, &negative, 1000).is_err());
        let mut garbage = framed[..16].to_vec();
        garbage.extend_from_slice(&[0, 0, 0, 3, 0xff, 0xff, 0xff]);
        assert!(decompress(Compression::Snappy, &garbage, 1000).is_err());
    }

    #[test]
    fn garbage_is_an_error() {
        let garbage = [0x12u8, 0x34, 0x56, 0x78, 0x9a, 0xbc, 0xde, 0xf0, 1, 2, 3];
        for codec in &CODECS[1..] {
            assert!(decompress(*codec, &garbage, 1000).is_err(), "{codec:?}");
        }
    }
}
