//! An array count bounded by the bytes remaining (allocation_bounds.rs) still multiplied into
//! a large reservation: `count * size_of::<T>()`, and request structs are up to ~112 bytes.
//! Found with the `request` fuzz target run on one crafted input (docs/fuzzing.md): an 8 MB
//! CreateTopics request claiming 8 million topics made the codec reserve 896 MB at once, so
//! a 100 MiB frame (the default maximum) could ask for ~11 GB. The vendored kafka-protocol
//! patch now reserves no more memory than the bytes left (vendor/kafka-protocol/WEIR-PATCH.md).
//!
//! The only test in this file, because it watches every allocation of the process.
#![allow(unsafe_code)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{ApiKey, RequestKind};

/// The system allocator, remembering the largest single request.
struct Largest;

static LARGEST: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System` with the caller's arguments unchanged.
unsafe impl GlobalAlloc for Largest {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LARGEST.fetch_max(layout.size(), Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::alloc`'s contract.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System` through `alloc`/`realloc` with this layout.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        LARGEST.fetch_max(new_size, Ordering::Relaxed);
        // SAFETY: forwarded as is; the caller upholds `GlobalAlloc::realloc`'s contract.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static ALLOCATOR: Largest = Largest;

#[test]
fn an_array_count_reserves_no_more_memory_than_the_bytes_left() {
    // CreateTopics v2 body: a topic count of one million, then a million 0xff bytes, so the
    // first topic's name length is -1 (null, not allowed) and decoding stops there. Before
    // the patch the reservation alone was 1M * size_of::<CreatableTopic>() = 112 MB.
    let count: usize = 1_000_000;
    let mut body = BytesMut::with_capacity(4 + count);
    body.put_i32(i32::try_from(count).unwrap_or(i32::MAX));
    body.put_bytes(0xff, count);
    let mut body: Bytes = body.freeze();
    let len = body.len();

    LARGEST.store(0, Ordering::Relaxed);
    assert!(RequestKind::decode(ApiKey::CreateTopics, &mut body, 2).is_err());
    let largest = LARGEST.load(Ordering::Relaxed);
    assert!(
        largest <= len,
        "decoding a {len}-byte body allocated {largest} bytes at once"
    );
}
