//! When a log is cleaned and how far: pure functions over segment summaries and the
//! compaction settings, like retention's in [`crate::log::policy`].
//!
//! Owns Kafka's rules for `min.cleanable.dirty.ratio`, `min.compaction.lag.ms`,
//! `max.compaction.lag.ms` and `delete.retention.ms`; does no I/O. Invariants: the active
//! segment is never cleanable; nothing at or past the durable offset is cleanable (the
//! cleaner rewrites only what is already on disk); a segment holding a record younger than
//! `min.compaction.lag.ms` ends the cleanable range.

use crate::log::CompactionConfig;

/// What the policy needs to know about one segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SegmentFacts {
    /// Bytes of the segment.
    pub(crate) bytes: u64,
    /// Its first offset.
    pub(crate) base_offset: i64,
    /// The offset after its last one (the next segment's base offset).
    pub(crate) end_offset: i64,
    /// Its newest record timestamp (-1 when unknown).
    pub(crate) newest_ms: i64,
}

/// How many leading segments may be cleaned. `segments` ends with the active segment, which
/// is never counted.
pub(crate) fn cleanable_prefix(
    segments: &[SegmentFacts],
    durable_offset: i64,
    now_ms: i64,
    config: &CompactionConfig,
) -> usize {
    let sealed = segments.len().saturating_sub(1);
    let young_after = now_ms.saturating_sub(config.min_compaction_lag_ms.max(0));
    segments[..sealed]
        .iter()
        .take_while(|s| s.end_offset <= durable_offset && s.newest_ms <= young_after)
        .count()
}

/// Why a log is due for cleaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Due {
    /// The dirty share reached `min.cleanable.dirty.ratio`.
    DirtyRatio,
    /// A dirty record is older than `max.compaction.lag.ms`.
    MaxLag,
}

/// Whether the cleanable range `segments` (from [`cleanable_prefix`]) is due, given the first
/// offset not yet cleaned and the timestamp of the first dirty batch.
pub(crate) fn due(
    segments: &[SegmentFacts],
    first_dirty: i64,
    first_dirty_ms: Option<i64>,
    now_ms: i64,
    config: &CompactionConfig,
) -> Option<Due> {
    let (mut clean, mut dirty) = (0u64, 0u64);
    for s in segments {
        if s.end_offset <= first_dirty {
            clean += s.bytes;
        } else {
            dirty += s.bytes;
        }
    }
    if dirty == 0 {
        return None;
    }
    if let Some(ts) = first_dirty_ms {
        if ts >= 0 && now_ms.saturating_sub(ts) > config.max_compaction_lag_ms {
            return Some(Due::MaxLag);
        }
    }
    let ratio = dirty as f64 / (clean + dirty) as f64;
    (ratio >= config.min_cleanable_dirty_ratio).then_some(Due::DirtyRatio)
}

/// Whether a tombstone in a batch carrying `delete_horizon_ms` (set when the batch was first
/// cleaned: that time plus `delete.retention.ms`) may now be removed.
pub(crate) fn tombstone_expired(delete_horizon_ms: Option<i64>, now_ms: i64) -> bool {
    delete_horizon_ms.is_some_and(|horizon| now_ms >= horizon)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(base: i64, end: i64, bytes: u64, newest_ms: i64) -> SegmentFacts {
        SegmentFacts {
            bytes,
            base_offset: base,
            end_offset: end,
            newest_ms,
        }
    }

    #[test]
    fn active_undurable_and_young_segments_are_not_cleanable() {
        let config = CompactionConfig {
            min_compaction_lag_ms: 100,
            ..CompactionConfig::default()
        };
        let segs = [
            seg(0, 10, 1, 0),
            seg(10, 20, 1, 0),
            seg(20, 30, 1, 950),
            seg(30, 40, 1, 0),
        ];
        assert_eq!(cleanable_prefix(&segs, 40, 1000, &config), 2);
        assert_eq!(cleanable_prefix(&segs, 5, 1000, &config), 0);
        assert_eq!(
            cleanable_prefix(&segs, 40, 2000, &config),
            3,
            "the active one never"
        );
    }

    #[test]
    fn due_by_ratio_or_by_max_lag() {
        let config = CompactionConfig {
            min_cleanable_dirty_ratio: 0.5,
            max_compaction_lag_ms: 1000,
            ..CompactionConfig::default()
        };
        let segs = [seg(0, 10, 300, 0), seg(10, 20, 100, 0)];
        assert_eq!(due(&segs, 10, Some(900), 1000, &config), None);
        assert_eq!(
            due(&segs, 0, Some(900), 1000, &config),
            Some(Due::DirtyRatio)
        );
        assert_eq!(due(&segs, 10, Some(0), 2000, &config), Some(Due::MaxLag));
        assert_eq!(
            due(&segs, 20, Some(0), 9000, &config),
            None,
            "nothing dirty"
        );
    }

    #[test]
    fn tombstones_wait_for_their_horizon() {
        assert!(!tombstone_expired(None, i64::MAX));
        assert!(!tombstone_expired(Some(100), 99));
        assert!(tombstone_expired(Some(100), 100));
    }
}
