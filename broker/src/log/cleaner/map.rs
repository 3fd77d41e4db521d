//! The cleaner's key→offset map: for each key seen in the dirty part of a log, the offset of
//! its last record.
//!
//! Owns a fixed block of memory (Kafka's `log.cleaner.dedupe.buffer.size`) and nothing else.
//! Keys are not stored: each slot holds a 128-bit hash of the key (XXH3-128) and an offset,
//! 24 bytes, as Kafka's `SkimpyOffsetMap` stores an MD5 and an offset. Two keys whose hashes
//! collide would share a slot (the older one's last record could be dropped); at 128 bits that
//! is far below the chance of a disk error.
//!
//! Invariants: the map never allocates after it is created; it holds at most
//! [`OffsetMap::capacity`] keys (a load factor of 0.9 keeps linear probing short); an offset
//! stored for a key only grows while the map is filled in log order.

use twox_hash::XxHash3_128;

/// Bytes one slot takes: hash (16) and offset (8).
pub(crate) const SLOT_BYTES: usize = 24;
/// Share of the slots that may be used, in tenths (Kafka's 0.9).
const LOAD_TENTHS: usize = 9;

/// A slot: the key's hash in two halves and the offset plus one (0 marks an empty slot, so a
/// zeroed allocation is an empty map and costs no page until touched).
type Slot = [u64; 3];

/// Fixed-size open-addressing map from key hashes to offsets.
#[derive(Debug)]
pub(crate) struct OffsetMap {
    slots: Vec<Slot>,
    used: usize,
    capacity: usize,
}

impl OffsetMap {
    /// A map in about `memory_bytes` bytes (at least a few slots).
    pub(crate) fn with_memory(memory_bytes: usize) -> Self {
        let slots = (memory_bytes / SLOT_BYTES).max(4);
        // `vec!` of zeros is a zeroed allocation: pages are touched only as slots fill.
        let capacity = slots / 10 * LOAD_TENTHS + slots % 10 * LOAD_TENTHS / 10;
        Self {
            slots: vec![[0; 3]; slots],
            used: 0,
            capacity: capacity.max(1),
        }
    }

    /// Keys the map can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Keys it holds.
    pub(crate) fn len(&self) -> usize {
        self.used
    }

    /// Whether `n` more keys surely fit (each could be new).
    pub(crate) fn has_room_for(&self, n: usize) -> bool {
        self.used.saturating_add(n) <= self.capacity
    }

    /// Records `offset` as the last offset of `key`. The caller checks room first
    /// ([`Self::has_room_for`]); a full map refuses a new key and returns `false`.
    pub(crate) fn put(&mut self, key: &[u8], offset: i64) -> bool {
        let (hi, lo) = hash(key);
        let stored = offset.saturating_add(1) as u64;
        let mut i = self.home(hi);
        loop {
            let slot = &mut self.slots[i];
            if slot[2] == 0 {
                if self.used >= self.capacity {
                    return false;
                }
                *slot = [hi, lo, stored];
                self.used += 1;
                return true;
            }
            if slot[0] == hi && slot[1] == lo {
                slot[2] = stored;
                return true;
            }
            i = (i + 1) % self.slots.len();
        }
    }

    /// The last offset recorded for `key`.
    pub(crate) fn get(&self, key: &[u8]) -> Option<i64> {
        let (hi, lo) = hash(key);
        let mut i = self.home(hi);
        // At most `capacity < len` slots are used, so an empty slot ends every probe.
        loop {
            let slot = &self.slots[i];
            if slot[2] == 0 {
                return None;
            }
            if slot[0] == hi && slot[1] == lo {
                return Some((slot[2] - 1) as i64);
            }
            i = (i + 1) % self.slots.len();
        }
    }

    /// Empties the map for the next pass. The slots are allocated afresh rather than
    /// zeroed: a fresh zeroed allocation of this size is untouched pages, so a map that was
    /// barely used does not cost its whole size in memory and time at every pass.
    pub(crate) fn clear(&mut self) {
        if self.used > 0 {
            let slots = self.slots.len();
            self.slots = Vec::new();
            self.slots = vec![[0; 3]; slots];
            self.used = 0;
        }
    }

    fn home(&self, hi: u64) -> usize {
        // The remainder is below the slot count, a `usize`.
        usize::try_from(hi % self.slots.len() as u64).unwrap_or(0)
    }
}

fn hash(key: &[u8]) -> (u64, u64) {
    let h = XxHash3_128::oneshot(key).to_be_bytes();
    let (hi, lo) = h.split_at(8);
    let half = |b: &[u8]| u64::from_be_bytes(b.try_into().unwrap_or([0; 8]));
    (half(hi), half(lo))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_the_last_offset_and_refuses_new_keys_when_full() {
        let mut map = OffsetMap::with_memory(10 * SLOT_BYTES);
        assert_eq!(map.capacity(), 9);
        for i in 0..9u8 {
            assert!(map.put(&[i], i64::from(i)));
        }
        assert!(map.put(&[3], 100), "a known key always fits");
        assert!(!map.put(&[42], 7), "a new key does not");
        assert_eq!(map.get(&[3]), Some(100));
        assert_eq!(map.get(&[8]), Some(8));
        assert_eq!(map.get(&[42]), None);
        assert!(!map.has_room_for(1));
        map.clear();
        assert_eq!(map.len(), 0);
        assert_eq!(map.get(&[3]), None);
        assert!(map.put(&[0], 0) && map.get(&[0]) == Some(0));
    }
}
