//! `FrameCodec` (size-prefixed framing) fed a byte stream in arbitrary chunks.
//!
//! Input layout: byte 0 is the codec's maximum payload size (0-255 bytes, so that the size
//! checks are reached often), byte 1 seeds the chunk sizes, the rest is the byte stream as it
//! arrives from the socket.
//!
//! Checked against a whole-stream reference parser:
//! - the frames come out in order, byte for byte, each at most `max` bytes long;
//! - `Ok(None)` leaves the buffer exactly as it was (nothing consumed, nothing changed);
//! - `Ok(Some(frame))` consumes exactly the prefix and the payload;
//! - the first error is the reference's error (negative size, or too large), at the same
//!   frame, and it is final: decoding again, with or without more bytes, fails again and
//!   consumes nothing;
//! - `decode_eof` fails exactly when the stream ends inside a frame;
//! - each frame re-encodes to the bytes it came from, and `encode` refuses an oversize payload
//!   without writing anything.

#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::{Decoder, Encoder};
use weir_protocol::frame::{FrameCodec, FrameError, SIZE_PREFIX_LEN};

/// What the reference parser expects at one position of the stream.
#[derive(Debug, PartialEq, Eq)]
enum Expected<'a> {
    Frame(&'a [u8]),
    Negative(i32),
    TooLarge(usize),
}

/// Cuts the whole stream at once: frames, then possibly one error; stops at an incomplete
/// frame. Returns the items and whether the stream ends inside a frame (or prefix).
fn reference(stream: &[u8], max: usize) -> (Vec<Expected<'_>>, bool) {
    let mut out = Vec::new();
    let mut rest = stream;
    loop {
        let Some((prefix, body)) = rest.split_first_chunk::<SIZE_PREFIX_LEN>() else {
            return (out, !rest.is_empty());
        };
        let size = i32::from_be_bytes(*prefix);
        if size < 0 {
            out.push(Expected::Negative(size));
            return (out, true);
        }
        let size = size as usize;
        if size > max {
            out.push(Expected::TooLarge(size));
            return (out, true);
        }
        if body.len() < size {
            return (out, true);
        }
        out.push(Expected::Frame(&body[..size]));
        rest = &body[size..];
    }
}

/// Small deterministic generator for chunk sizes.
struct Chunks(u32);

impl Chunks {
    fn next(&mut self) -> usize {
        // xorshift32; the seed is never zero.
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 17;
        self.0 ^= self.0 << 5;
        match self.0 % 8 {
            // Empty reads happen (a wakeup with nothing new).
            0 => 0,
            1..=4 => 1 + (self.0 >> 8) as usize % 4,
            5 | 6 => 1 + (self.0 >> 8) as usize % 64,
            _ => 1 + (self.0 >> 8) as usize % 1024,
        }
    }
}

fn check_error(err: &FrameError, expected: Option<&Expected<'_>>, max: usize) {
    match (err, expected) {
        (FrameError::NegativeSize(got), Some(Expected::Negative(want))) => assert_eq!(got, want),
        (FrameError::TooLarge { size, max: m }, Some(Expected::TooLarge(want))) => {
            assert_eq!(size, want);
            assert_eq!(*m, max);
        }
        (err, expected) => panic!("decode error {err:?}, reference expected {expected:?}"),
    }
}

fuzz_target!(|data: &[u8]| {
    let [max, seed, stream @ ..] = data else {
        return;
    };
    let max = usize::from(*max);
    let mut chunks = Chunks(u32::from(*seed) | 0x100);
    let (expected, ends_inside) = reference(stream, max);

    let mut codec = FrameCodec::new(max);
    assert_eq!(codec.max_frame_bytes(), max);
    let mut buf = BytesMut::new();
    let mut fed = 0usize;
    // Where the next frame starts in `stream`.
    let mut consumed = 0usize;
    let mut items = expected.iter();
    let mut failed = None;

    'feed: while fed < stream.len() {
        let n = chunks.next().min(stream.len() - fed);
        buf.extend_from_slice(&stream[fed..fed + n]);
        fed += n;
        loop {
            let before = buf.clone();
            match codec.decode(&mut buf) {
                Ok(None) => {
                    assert_eq!(buf, before, "Ok(None) changed the buffer");
                    break;
                }
                Ok(Some(frame)) => {
                    assert!(frame.len() <= max, "frame of {} > max {max}", frame.len());
                    assert_eq!(buf.len(), before.len() - SIZE_PREFIX_LEN - frame.len());
                    assert_eq!(&before[SIZE_PREFIX_LEN + frame.len()..], &buf[..]);
                    assert_eq!(items.next(), Some(&Expected::Frame(&frame[..])));
                    assert_eq!(
                        &stream[consumed..consumed + SIZE_PREFIX_LEN + frame.len()],
                        &before[..SIZE_PREFIX_LEN + frame.len()]
                    );
                    consumed += SIZE_PREFIX_LEN + frame.len();

                    let mut encoded = BytesMut::new();
                    codec
                        .encode(&frame[..], &mut encoded)
                        .expect("re-encode a decoded frame");
                    assert_eq!(&encoded[..], &before[..SIZE_PREFIX_LEN + frame.len()]);
                }
                Err(err) => {
                    assert_eq!(buf, before, "an error consumed bytes");
                    check_error(&err, items.next(), max);
                    failed = Some(before);
                    break 'feed;
                }
            }
        }
    }

    if let Some(at_error) = failed {
        // Sticky: the bad prefix stays, and so does the error, whatever arrives next.
        buf.extend_from_slice(&stream[fed..]);
        buf.extend_from_slice(&[0; 8]);
        assert!(codec.decode(&mut buf).is_err(), "error was not final");
        assert!(buf.starts_with(&at_error), "bytes consumed after an error");
        assert!(codec.decode_eof(&mut buf).is_err());
        return;
    }

    // The whole stream is in: everything the reference found must have come out.
    assert_eq!(
        items.next(),
        None,
        "a frame the reference found was not decoded"
    );
    assert_eq!(buf.len(), stream.len() - consumed);
    match codec.decode_eof(&mut buf) {
        Ok(None) => assert!(!ends_inside && buf.is_empty()),
        Ok(Some(frame)) => panic!("decode_eof found a frame of {} bytes late", frame.len()),
        Err(FrameError::Io(_)) => assert!(ends_inside && !buf.is_empty()),
        Err(err) => panic!("decode_eof: unexpected {err:?}"),
    }

    // Encoding refuses what decoding would refuse, and writes nothing when it does.
    let oversize = vec![0u8; max + 1];
    let mut dst = BytesMut::from(&b"keep"[..]);
    assert!(matches!(
        codec.encode(&oversize[..], &mut dst),
        Err(FrameError::TooLarge { .. })
    ));
    assert_eq!(&dst[..], b"keep");
});
