//! Kafka framing: every request and response is a 4-byte big-endian signed size followed by
//! that many bytes of payload.
//!
//! ```text
//! offset  field    type
//! 0       Size     int32    bytes that follow; never negative
//! 4       Payload  bytes    request or response header + body
//! ```
//!
//! Owns cutting a byte stream into frames ([`FrameCodec`] as a `tokio_util` [`Decoder`]) and
//! writing the size prefix ([`Encoder`]). It does not look inside the payload (headers and
//! bodies are someone else's) and it does not do I/O: the codec only works on the `BytesMut` a
//! `FramedRead`/`FramedWrite` (or a test) hands it.
//!
//! Invariants: nothing here panics on any input. A declared size is checked against the
//! configured maximum from the 4-byte prefix alone, before any memory is reserved, so a peer
//! claiming a 2 GB frame costs nothing. For a frame that has been accepted, buffer space is
//! reserved as its bytes arrive (never more than 4 times what was received or than
//! 4 × [`READ_CHUNK`], whichever is larger), never from the declared size alone. Decoding errors are sticky (the bad prefix stays in the
//! buffer), and the connection must be closed: there is no way to resynchronise a byte stream.

use bytes::{Buf, BufMut, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

/// Length of the size prefix in front of every frame.
pub const SIZE_PREFIX_LEN: usize = 4;

/// Default largest payload accepted or written: 100 MiB, Kafka's `socket.request.max.bytes`.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Largest payload the int32 size prefix can describe.
const WIRE_MAX_FRAME_BYTES: usize = 0x7FFF_FFFF;

/// Most buffer space reserved ahead of the bytes received for a frame that is still arriving.
pub const READ_CHUNK: usize = 64 * 1024;

/// Why a frame was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FrameError {
    /// The declared (decoding) or actual (encoding) payload size is above the maximum.
    #[error("frame of {size} bytes exceeds the maximum of {max} bytes")]
    TooLarge {
        /// Payload size in bytes.
        size: usize,
        /// The codec's maximum payload size.
        max: usize,
    },
    /// The size prefix is negative.
    #[error("frame size prefix is negative: {0}")]
    NegativeSize(i32),
    /// I/O error from the transport (required by `tokio_util`; also returned by the default
    /// `decode_eof` when the stream ends inside a frame).
    #[error("frame I/O error: {0}")]
    Io(#[from] std::io::Error),
}

/// Size-prefixed framing, as a `tokio_util` codec.
///
/// Decodes into the payload without its prefix; encodes any `AsRef<[u8]>` payload by writing
/// the prefix and a copy of the bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameCodec {
    max_frame_bytes: usize,
}

impl FrameCodec {
    /// A codec that accepts and writes payloads of at most `max_frame_bytes` bytes.
    ///
    /// The maximum is clamped to `i32::MAX`, the largest size the prefix can describe.
    #[must_use]
    pub const fn new(max_frame_bytes: usize) -> Self {
        let max_frame_bytes = if max_frame_bytes > WIRE_MAX_FRAME_BYTES {
            WIRE_MAX_FRAME_BYTES
        } else {
            max_frame_bytes
        };
        Self { max_frame_bytes }
    }

    /// The largest payload this codec accepts or writes, in bytes.
    #[must_use]
    pub const fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }
}

impl Default for FrameCodec {
    fn default() -> Self {
        Self::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl Decoder for FrameCodec {
    type Item = BytesMut;
    type Error = FrameError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, FrameError> {
        let Some(&[b0, b1, b2, b3]) = src.get(..SIZE_PREFIX_LEN) else {
            return Ok(None);
        };
        let declared = i32::from_be_bytes([b0, b1, b2, b3]);
        let Ok(size) = usize::try_from(declared) else {
            return Err(FrameError::NegativeSize(declared));
        };
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_bytes,
            });
        }
        // Cannot overflow: size <= i32::MAX.
        let total = SIZE_PREFIX_LEN.saturating_add(size);
        if src.len() < total {
            // Memory follows what the peer has sent, not what it claims: while the rest of
            // the frame is more than 4 times what is here (or than READ_CHUNK), reserve only
            // as much again, so a peer that announces 100 MiB and sends 4 bytes costs 64 KiB
            // and a real large frame grows the buffer geometrically (amortised O(size)
            // copying). Then reserve the rest exactly: the first reservation that jumps
            // straight to the frame's size gives it a buffer of that size, not a doubled one
            // with up to twice the memory the produce-bytes budget accounts for.
            let missing = total - src.len();
            let ahead = src.len().max(READ_CHUNK);
            src.reserve(if missing <= 4 * ahead { missing } else { ahead });
            return Ok(None);
        }
        src.advance(SIZE_PREFIX_LEN);
        Ok(Some(src.split_to(size)))
    }
}

impl<T: AsRef<[u8]>> Encoder<T> for FrameCodec {
    type Error = FrameError;

    fn encode(&mut self, item: T, dst: &mut BytesMut) -> Result<(), FrameError> {
        let payload = item.as_ref();
        let size = payload.len();
        let too_large = || FrameError::TooLarge {
            size,
            max: self.max_frame_bytes,
        };
        if size > self.max_frame_bytes {
            return Err(too_large());
        }
        let prefix = i32::try_from(size).map_err(|_overflow| too_large())?;
        dst.reserve(SIZE_PREFIX_LEN.saturating_add(size));
        dst.put_i32(prefix);
        dst.put_slice(payload);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn framed(payload: &[u8]) -> Vec<u8> {
        let mut out = u32::try_from(payload.len()).unwrap().to_be_bytes().to_vec();
        out.extend_from_slice(payload);
        out
    }

    #[test]
    fn needs_four_bytes_of_prefix() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::new();
        for byte in [0u8, 0, 0] {
            buf.put_u8(byte);
            assert!(codec.decode(&mut buf).unwrap().is_none());
        }
        buf.put_u8(2);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        buf.put_slice(b"hi");
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], b"hi");
        assert!(buf.is_empty());
    }

    #[test]
    fn reserves_only_the_missing_part() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&framed(&[7; 1000])[..10]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= 1004);
        assert_eq!(buf.len(), 10, "nothing consumed while waiting");
    }

    #[test]
    fn a_claimed_size_alone_reserves_little() {
        // 100 MiB announced (the default maximum), 4 bytes sent.
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&100_000_000i32.to_be_bytes()[..]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() >= SIZE_PREFIX_LEN + READ_CHUNK);
        assert!(buf.capacity() < 4 * READ_CHUNK, "{}", buf.capacity());
        // 300 KB of it received: the reservation follows the bytes received (at most
        // doubling the buffer).
        let mut buf = BytesMut::from(&100_000_000i32.to_be_bytes()[..]);
        buf.put_slice(&[5; 300_000]);
        let len = buf.len();
        assert!(codec.decode(&mut buf).unwrap().is_none());
        assert!(buf.capacity() <= 2 * len + READ_CHUNK, "{}", buf.capacity());
        assert_eq!(buf.len(), len, "nothing consumed while waiting");
    }

    #[test]
    fn the_last_reservation_is_exact() {
        // Once the rest is within reach, the buffer is sized to the frame, not doubled past
        // it: the produce-bytes budget counts frame lengths, so slack would be uncounted.
        let mut codec = FrameCodec::default();
        for (size, received) in [(1_500_000, 100_000), (600_000, 300_000), (70_000, 0)] {
            let payload = vec![5u8; size];
            let stream = framed(&payload);
            let mut buf = BytesMut::from(&stream[..SIZE_PREFIX_LEN + received]);
            assert!(codec.decode(&mut buf).unwrap().is_none());
            while buf.capacity() < stream.len() {
                // Fill what was reserved, as a socket read would, and decode again.
                let upto = buf.capacity().min(stream.len());
                buf.put_slice(&stream[buf.len()..upto]);
                assert!(codec.decode(&mut buf).unwrap().is_none());
            }
            assert!(
                buf.capacity() < stream.len() + READ_CHUNK,
                "{size}: capacity {} for a frame of {}",
                buf.capacity(),
                stream.len()
            );
            buf.put_slice(&stream[buf.len()..]);
            assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], &payload[..]);
        }
    }

    #[test]
    fn refused_sizes_reserve_nothing() {
        let mut codec = FrameCodec::default();
        let just_over = i32::try_from(DEFAULT_MAX_FRAME_BYTES).unwrap() + 1;
        for declared in [i32::MAX, just_over, -1] {
            let mut buf = BytesMut::with_capacity(SIZE_PREFIX_LEN);
            buf.put_i32(declared);
            assert!(codec.decode(&mut buf).is_err());
            assert_eq!(buf.capacity(), SIZE_PREFIX_LEN, "{declared}");
        }
    }

    #[test]
    fn zero_length_frame() {
        let mut codec = FrameCodec::default();
        let mut buf = BytesMut::from(&[0u8, 0, 0, 0, 0, 0, 0, 1, 9][..]);
        assert!(codec.decode(&mut buf).unwrap().unwrap().is_empty());
        assert_eq!(&codec.decode(&mut buf).unwrap().unwrap()[..], [9]);
        assert!(codec.decode(&mut buf).unwrap().is_none());
    }

    #[test]
    fn negative_and_oversize_prefixes() {
        let mut codec = FrameCodec::new(16);
        let mut buf = BytesMut::from(&(-1i32).to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::NegativeSize(-1))
        ));
        let mut buf = BytesMut::from(&17i32.to_be_bytes()[..]);
        assert!(matches!(
            codec.decode(&mut buf),
            Err(FrameError::TooLarge { size: 17, max: 16 })
        ));
    }

    #[test]
    fn encode_checks_the_maximum() {
        let mut codec = FrameCodec::new(3);
        let mut dst = BytesMut::new();
        codec.encode(Bytes::from_static(b"abc"), &mut dst).unwrap();
        codec.encode(&b""[..], &mut dst).unwrap();
        assert_eq!(&dst[..], b"\0\0\0\x03abc\0\0\0\0");
        let err = codec.encode(&b"abcd"[..], &mut dst).unwrap_err();
        assert!(matches!(err, FrameError::TooLarge { size: 4, max: 3 }));
        assert_eq!(dst.len(), 11, "nothing written on error");
    }

    #[test]
    fn maximum_is_clamped_to_the_wire_limit() {
        assert_eq!(FrameCodec::new(usize::MAX).max_frame_bytes(), 0x7FFF_FFFF);
        assert_eq!(
            FrameCodec::default().max_frame_bytes(),
            DEFAULT_MAX_FRAME_BYTES
        );
    }
}
