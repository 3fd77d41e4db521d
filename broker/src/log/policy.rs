//! Roll and retention decisions as pure functions of the log's shape and the time.
//!
//! The partition log gathers the facts, asks here, and carries out the answer; nothing here
//! reads a clock or a file.

/// Why the active segment must roll before the next append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RollReason {
    /// The next batch does not fit in the preallocated space.
    Full,
    /// The segment is older than `segment.ms`.
    Aged,
}

/// The facts about the active segment that decide a roll.
#[derive(Debug, Clone, Copy)]
pub struct RollInput {
    /// Bytes already in the active segment.
    pub active_bytes: usize,
    /// Preallocated bytes still free.
    pub free_bytes: usize,
    /// Size of the batch about to be appended.
    pub batch_bytes: usize,
    /// When the first batch went into the active segment (clock milliseconds).
    pub first_append_ms: i64,
    /// Now.
    pub now_ms: i64,
    /// `segment.ms`.
    pub segment_ms: i64,
}

/// Whether to roll before appending. An empty segment never rolls: rolling it would only make
/// another empty one.
pub fn roll_reason(input: RollInput) -> Option<RollReason> {
    if input.active_bytes == 0 {
        return None;
    }
    if input.batch_bytes > input.free_bytes {
        return Some(RollReason::Full);
    }
    if input.now_ms.saturating_sub(input.first_append_ms) >= input.segment_ms {
        return Some(RollReason::Aged);
    }
    None
}

/// What retention needs to know about one sealed segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SegmentSummary {
    /// Size of the `.log` file.
    pub bytes: u64,
    /// Newest record timestamp in the segment (or, without timestamps, when it was written).
    pub newest_ms: i64,
}

/// Retention settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retention {
    /// Keep the log at most this large (`retention.bytes`).
    pub max_bytes: Option<u64>,
    /// Keep records at most this old (`retention.ms`).
    pub max_age_ms: Option<i64>,
}

/// How many of the oldest sealed segments to delete. `sealed` is oldest first and excludes the
/// active segment, which is never deleted; `active_bytes` still counts towards the size limit.
///
/// By size (Kafka's rule): delete the oldest segments while the log stays at or above the
/// limit without them. By age: delete the oldest segments while their newest record is older
/// than the limit. The larger of the two prefixes wins.
pub fn segments_to_delete(
    sealed: &[SegmentSummary],
    active_bytes: u64,
    retention: Retention,
    now_ms: i64,
) -> usize {
    let by_size = retention.max_bytes.map_or(0, |max| {
        let total: u64 = sealed.iter().map(|s| s.bytes).sum::<u64>() + active_bytes;
        let mut excess = total.saturating_sub(max);
        sealed
            .iter()
            .take_while(|s| {
                let fits = s.bytes <= excess;
                if fits {
                    excess -= s.bytes;
                }
                fits
            })
            .count()
    });
    let by_age = retention.max_age_ms.map_or(0, |max_age| {
        sealed
            .iter()
            .take_while(|s| now_ms.saturating_sub(s.newest_ms) > max_age)
            .count()
    });
    by_size.max(by_age)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seg(bytes: u64, newest_ms: i64) -> SegmentSummary {
        SegmentSummary { bytes, newest_ms }
    }

    #[test]
    fn roll_rules() {
        let base = RollInput {
            active_bytes: 10,
            free_bytes: 100,
            batch_bytes: 50,
            first_append_ms: 0,
            now_ms: 5,
            segment_ms: 10,
        };
        assert_eq!(roll_reason(base), None);
        assert_eq!(
            roll_reason(RollInput {
                batch_bytes: 101,
                ..base
            }),
            Some(RollReason::Full)
        );
        assert_eq!(
            roll_reason(RollInput { now_ms: 10, ..base }),
            Some(RollReason::Aged)
        );
        assert_eq!(
            roll_reason(RollInput {
                active_bytes: 0,
                batch_bytes: 500,
                now_ms: 99,
                ..base
            }),
            None
        );
    }

    #[test]
    fn retention_by_size_keeps_at_least_the_limit() {
        let sealed = [seg(100, 0), seg(100, 0), seg(100, 0)];
        let r = Retention {
            max_bytes: Some(250),
            max_age_ms: None,
        };
        // 300 sealed + 50 active = 350; dropping one leaves 250 (>= limit), two would leave 150.
        assert_eq!(segments_to_delete(&sealed, 50, r, 0), 1);
        assert_eq!(
            segments_to_delete(
                &sealed,
                50,
                Retention {
                    max_bytes: Some(0),
                    max_age_ms: None
                },
                0
            ),
            3
        );
        assert_eq!(
            segments_to_delete(
                &sealed,
                50,
                Retention {
                    max_bytes: Some(1000),
                    max_age_ms: None
                },
                0
            ),
            0
        );
    }

    #[test]
    fn retention_by_age_deletes_an_expired_prefix() {
        let sealed = [seg(1, 10), seg(1, 50), seg(1, 20)];
        let r = Retention {
            max_bytes: None,
            max_age_ms: Some(30),
        };
        // now 70: ages 60, 20, 50 -> only the first (the third is behind a young one).
        assert_eq!(segments_to_delete(&sealed, 0, r, 70), 1);
        assert_eq!(segments_to_delete(&sealed, 0, r, 100), 3);
        assert_eq!(
            segments_to_delete(
                &sealed,
                0,
                Retention {
                    max_bytes: None,
                    max_age_ms: None
                },
                1_000
            ),
            0
        );
    }
}
