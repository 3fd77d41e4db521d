//! Framing against split reads, many frames per read, hostile size prefixes and random data.

use bytes::{BufMut, Bytes, BytesMut};
use proptest::prelude::*;
use tokio_util::codec::{Decoder, Encoder};
use weir_protocol::frame::{DEFAULT_MAX_FRAME_BYTES, FrameCodec, FrameError};

fn encode_all(codec: &mut FrameCodec, payloads: &[Vec<u8>]) -> BytesMut {
    let mut wire = BytesMut::new();
    for p in payloads {
        codec.encode(p.as_slice(), &mut wire).unwrap();
    }
    wire
}

/// Feeds `wire` to a decoder in chunks of the given sizes (cycled) and collects every frame.
fn decode_in_chunks(codec: &mut FrameCodec, wire: &[u8], chunks: &[usize]) -> Vec<Vec<u8>> {
    let mut src = BytesMut::new();
    let mut out = Vec::new();
    let mut rest = wire;
    let mut sizes = chunks.iter().copied().cycle();
    while !rest.is_empty() {
        let n = sizes.next().unwrap_or(1).clamp(1, rest.len());
        src.put_slice(&rest[..n]);
        rest = &rest[n..];
        while let Some(frame) = codec.decode(&mut src).unwrap() {
            out.push(frame.to_vec());
        }
    }
    assert!(src.is_empty(), "no leftover bytes");
    assert!(codec.decode_eof(&mut src).unwrap().is_none());
    out
}

#[test]
fn split_headers_and_payloads() {
    let payloads = vec![
        b"hello".to_vec(),
        Vec::new(),
        vec![0xAB; 300],
        b"x".to_vec(),
    ];
    let wire = encode_all(&mut FrameCodec::default(), &payloads);
    for chunk in [1, 2, 3, 5, 7, 4, 300, wire.len()] {
        let got = decode_in_chunks(&mut FrameCodec::default(), &wire, &[chunk]);
        assert_eq!(got, payloads, "chunk size {chunk}");
    }
}

#[test]
fn several_frames_in_one_buffer() {
    let payloads: Vec<Vec<u8>> = (0u8..10).map(|i| vec![i; usize::from(i)]).collect();
    let mut codec = FrameCodec::default();
    let mut src = encode_all(&mut codec, &payloads);
    for p in &payloads {
        assert_eq!(&codec.decode(&mut src).unwrap().unwrap()[..], &p[..]);
    }
    assert!(codec.decode(&mut src).unwrap().is_none());
}

#[test]
fn oversize_rejected_without_growing_the_buffer() {
    let mut codec = FrameCodec::new(1024);
    let mut src = BytesMut::with_capacity(16);
    src.put_i32(1025);
    src.put_slice(b"abc");
    let capacity = src.capacity();
    let err = codec.decode(&mut src).unwrap_err();
    assert!(
        matches!(
            err,
            FrameError::TooLarge {
                size: 1025,
                max: 1024
            }
        ),
        "{err}"
    );
    assert!(
        src.capacity() <= capacity,
        "capacity grew from {capacity} to {}",
        src.capacity()
    );
    // Errors are sticky: the prefix stays, the same error comes back.
    assert!(matches!(
        codec.decode(&mut src),
        Err(FrameError::TooLarge { .. })
    ));
}

#[test]
fn claimed_two_gigabyte_frame_rejected_from_its_header() {
    let mut codec = FrameCodec::default();
    let mut src = BytesMut::with_capacity(4);
    src.put_i32(i32::MAX);
    let capacity = src.capacity();
    let err = codec.decode(&mut src).unwrap_err();
    assert!(matches!(
        err,
        FrameError::TooLarge {
            size: 0x7FFF_FFFF,
            max: DEFAULT_MAX_FRAME_BYTES
        }
    ));
    assert!(src.capacity() <= capacity);
}

#[test]
fn negative_size() {
    let mut codec = FrameCodec::default();
    for raw in [[0xFF, 0xFF, 0xFF, 0xFF], [0x80, 0, 0, 0]] {
        let mut src = BytesMut::from(&raw[..]);
        let capacity = src.capacity();
        let expected = i32::from_be_bytes(raw);
        assert!(
            matches!(codec.decode(&mut src), Err(FrameError::NegativeSize(n)) if n == expected)
        );
        assert!(src.capacity() <= capacity);
    }
}

#[test]
fn zero_length_frame() {
    let mut codec = FrameCodec::default();
    let mut wire = BytesMut::new();
    codec.encode(Bytes::new(), &mut wire).unwrap();
    assert_eq!(&wire[..], [0, 0, 0, 0]);
    assert_eq!(codec.decode(&mut wire).unwrap().unwrap().len(), 0);
    assert!(wire.is_empty());
}

#[test]
fn frame_at_exactly_the_maximum() {
    let mut codec = FrameCodec::new(8);
    let wire = encode_all(&mut codec, &[vec![1; 8]]);
    assert_eq!(decode_in_chunks(&mut codec, &wire, &[3]), vec![vec![1; 8]]);
}

#[test]
fn eof_inside_a_frame_is_an_error() {
    let mut codec = FrameCodec::default();
    let mut src = BytesMut::from(&[0u8, 0, 0, 5, 1, 2][..]);
    assert!(matches!(codec.decode_eof(&mut src), Err(FrameError::Io(_))));
}

proptest! {
    #[test]
    fn round_trip_random_chunkings(
        payloads in prop::collection::vec(prop::collection::vec(any::<u8>(), 0..600), 0..12),
        chunks in prop::collection::vec(1usize..64, 1..8),
    ) {
        let wire = encode_all(&mut FrameCodec::default(), &payloads);
        let expected_len: usize = payloads.iter().map(|p| 4 + p.len()).sum();
        prop_assert_eq!(wire.len(), expected_len);
        prop_assert_eq!(decode_in_chunks(&mut FrameCodec::default(), &wire, &chunks), payloads);
    }

    #[test]
    fn never_panics_and_never_over_reserves(bytes in prop::collection::vec(any::<u8>(), 0..64)) {
        let max = 32;
        let mut codec = FrameCodec::new(max);
        let mut src = BytesMut::from(&bytes[..]);
        while let Ok(Some(frame)) = codec.decode(&mut src) {
            prop_assert!(frame.len() <= max);
        }
        prop_assert!(src.capacity() <= 64 + 4 + max);
    }
}
