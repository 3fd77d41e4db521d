//! The crash campaign's history and its checker, apart from any I/O so that the checker can
//! be tested on histories that break each promise.
//!
//! A campaign records what the clients saw: every value a producer was given (`produced`),
//! every acknowledgement (`acked`: partition, offset, value), every record the consumer group
//! returned (`consumed`), every acknowledged offset commit and every committed offset read
//! back after a restart. At the end the partitions are read in full (`final_log`). The checker
//! then verifies, for the whole history:
//!
//! - every acknowledged record is in the final log at its acknowledged offset, unchanged;
//! - every acknowledged record was consumed by the group;
//! - nothing in the log or consumed was never produced, and what the group consumed at an
//!   offset is what the log holds there;
//! - offsets are dense from 0 in every partition;
//! - order: one producer's records appear in a partition in the order it sent them;
//! - no record of an idempotent producer appears twice;
//! - committed offsets never go backwards, and a commit acknowledged before a kill is still
//!   there after the restart.
//!
//! Values are `<producer>-<sequence>-<padding>`, so order and origin can be read back from
//! the value alone.

use std::collections::{BTreeMap, HashMap, HashSet};

/// A small seeded generator (SplitMix64): the campaign's schedule comes from it, so a seed
/// replays the same kills and pauses.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator seeded with `seed`.
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// A number in `lo..hi` (`lo` when the range is empty).
    pub fn range(&mut self, lo: u64, hi: u64) -> u64 {
        if hi <= lo {
            lo
        } else {
            lo + self.next_u64() % (hi - lo)
        }
    }

    /// True with probability `1/n`.
    pub fn one_in(&mut self, n: u64) -> bool {
        self.range(0, n.max(1)) == 0
    }
}

/// The campaign's seed: `$WEIR_CAMPAIGN_SEED` when set (a replay), else the clock.
///
/// # Panics
/// If `$WEIR_CAMPAIGN_SEED` is not a number.
pub fn seed_from_env() -> u64 {
    match std::env::var("WEIR_CAMPAIGN_SEED") {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("WEIR_CAMPAIGN_SEED must be a u64, got {s:?}")),
        Err(_) => std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs().wrapping_mul(1_000_000_007) ^ u64::from(d.subsec_nanos()))
            .unwrap_or(1),
    }
}

/// A number from the environment variable `name`, or `default`.
///
/// # Panics
/// If the variable is set and not a number.
pub fn count_from_env(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(s) => s
            .trim()
            .parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, got {s:?}")),
        Err(_) => default,
    }
}

/// The value a producer sends as its `seq`-th record, padded by `pad` bytes.
pub fn value(producer: &str, seq: u64, pad: usize) -> Vec<u8> {
    let mut v = format!("{producer}-{seq:010}-").into_bytes();
    v.resize(v.len() + pad, b'x');
    v
}

/// `(producer, sequence)` of a value made by [`value`].
pub fn parse_value(value: &[u8]) -> Option<(&str, u64)> {
    let text = std::str::from_utf8(value).ok()?;
    let mut parts = text.splitn(3, '-');
    let producer = parts.next()?;
    let seq = parts.next()?.parse().ok()?;
    parts.next()?;
    Some((producer, seq))
}

/// The final contents of the partitions: partition -> `(offset, value)` in offset order.
pub type FinalLog = BTreeMap<i32, Vec<(i64, Vec<u8>)>>;

/// An acknowledged record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ack {
    /// Partition it was written to.
    pub partition: i32,
    /// Offset the broker gave it.
    pub offset: i64,
    /// Its value.
    pub value: Vec<u8>,
}

/// What the clients saw during a campaign.
#[derive(Debug, Default, Clone)]
pub struct History {
    /// Every value handed to a producer, acknowledged or not.
    pub produced: HashSet<Vec<u8>>,
    /// Producers (value prefixes) that are idempotent: their records never appear twice.
    pub idempotent: HashSet<String>,
    /// Acknowledged records.
    pub acked: Vec<Ack>,
    /// Records returned to the consumer group: `(partition, offset, value)`.
    pub consumed: Vec<(i32, i64, Vec<u8>)>,
    /// Acknowledged commits, in the order they were acknowledged: `(partition, offset)`.
    pub commits: Vec<(i32, i64)>,
    /// Committed offsets read back after each restart: the commits acknowledged before that
    /// kill (highest per partition) and what the broker returned.
    pub commit_checks: Vec<CommitCheck>,
}

/// Committed offsets read back after a restart.
#[derive(Debug, Clone, Default)]
pub struct CommitCheck {
    /// Highest acknowledged commit per partition before the kill.
    pub acknowledged: BTreeMap<i32, i64>,
    /// What OffsetFetch returned after the restart.
    pub read_back: BTreeMap<i32, i64>,
}

/// The highest committed offset per partition among `commits`.
pub fn highest_commits(commits: &[(i32, i64)]) -> BTreeMap<i32, i64> {
    let mut out = BTreeMap::new();
    for &(p, o) in commits {
        let e = out.entry(p).or_insert(o);
        *e = (*e).max(o);
    }
    out
}

/// What the checker verified.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Checked {
    /// Records in the final log, each checked.
    pub log_records: usize,
    /// Acknowledged records, each found at its offset and consumed.
    pub acked: usize,
    /// Records the group consumed (duplicates after a rebalance included).
    pub consumed: usize,
    /// Committed-offset read-backs compared.
    pub commit_checks: usize,
}

/// Checks `history` against `final_log` (partition -> records in offset order). Returns
/// every violation found (at most a few per kind), or what was checked.
///
/// # Errors
/// The list of violations.
pub fn check(history: &History, final_log: &FinalLog) -> Result<Checked, Vec<String>> {
    let mut errors = Violations::default();
    let mut at: HashMap<(i32, i64), &[u8]> = HashMap::new();
    let mut seen_idempotent: HashMap<&[u8], (i32, i64)> = HashMap::new();
    let mut log_records = 0;
    for (&p, records) in final_log {
        let mut last_seq: HashMap<&str, (u64, i64)> = HashMap::new();
        for (i, (offset, value)) in records.iter().enumerate() {
            log_records += 1;
            if *offset != i as i64 {
                errors.push(
                    "dense",
                    format!("partition {p}: record {i} has offset {offset}"),
                );
            }
            at.insert((p, *offset), value);
            if !history.produced.contains(value) {
                errors.push(
                    "phantom",
                    format!(
                        "partition {p} offset {offset}: {} was never produced",
                        show(value)
                    ),
                );
            }
            let Some((producer, seq)) = parse_value(value) else {
                continue;
            };
            let idempotent = history.idempotent.contains(producer);
            if idempotent {
                if let Some((p0, o0)) = seen_idempotent.insert(value, (p, *offset)) {
                    errors.push(
                        "duplicate",
                        format!("{} at {p0}/{o0} and again at {p}/{offset}", show(value)),
                    );
                }
            }
            if let Some(&(prev, prev_offset)) = last_seq.get(producer) {
                // A plain producer's retry may repeat a record (equal sequence); nothing may
                // go back, and an idempotent producer never repeats.
                if seq < prev || (idempotent && seq == prev) {
                    errors.push(
                        "order",
                        format!(
                            "partition {p}: {producer} sequence {seq} at offset {offset} after {prev} at {prev_offset}"
                        ),
                    );
                }
            }
            last_seq.insert(producer, (seq, *offset));
        }
    }
    for ack in &history.acked {
        match at.get(&(ack.partition, ack.offset)) {
            Some(v) if *v == ack.value.as_slice() => {}
            Some(v) => errors.push(
                "lost",
                format!(
                    "partition {} offset {}: acknowledged {}, log holds {}",
                    ack.partition,
                    ack.offset,
                    show(&ack.value),
                    show(v)
                ),
            ),
            None => errors.push(
                "lost",
                format!(
                    "partition {} offset {}: acknowledged {}, beyond the log end",
                    ack.partition,
                    ack.offset,
                    show(&ack.value)
                ),
            ),
        }
    }
    let consumed: HashSet<(i32, i64)> = history.consumed.iter().map(|(p, o, _)| (*p, *o)).collect();
    for (p, o, v) in &history.consumed {
        match at.get(&(*p, *o)) {
            Some(stored) if *stored == v.as_slice() => {}
            other => errors.push(
                "consumed",
                format!(
                    "partition {p} offset {o}: consumed {}, log holds {}",
                    show(v),
                    other.map_or_else(|| "nothing".to_owned(), |s| show(s))
                ),
            ),
        }
    }
    for ack in &history.acked {
        if !consumed.contains(&(ack.partition, ack.offset)) {
            errors.push(
                "unconsumed",
                format!(
                    "partition {} offset {}: acknowledged {} was never consumed",
                    ack.partition,
                    ack.offset,
                    show(&ack.value)
                ),
            );
        }
    }
    let mut previous: BTreeMap<i32, i64> = BTreeMap::new();
    for (i, c) in history.commit_checks.iter().enumerate() {
        for (&p, &acked) in &c.acknowledged {
            let got = c.read_back.get(&p).copied();
            if got.is_none_or(|g| g < acked) {
                errors.push(
                    "commit lost",
                    format!("restart {i}: partition {p} committed {got:?} < acknowledged {acked}"),
                );
            }
        }
        for (&p, &got) in &c.read_back {
            if let Some(&before) = previous.get(&p) {
                if got < before {
                    errors.push(
                        "commit backwards",
                        format!("restart {i}: partition {p} committed {got} < earlier {before}"),
                    );
                }
            }
            previous.insert(p, got);
        }
    }
    if errors.list.is_empty() {
        Ok(Checked {
            log_records,
            acked: history.acked.len(),
            consumed: history.consumed.len(),
            commit_checks: history.commit_checks.len(),
        })
    } else {
        Err(errors.finish())
    }
}

fn show(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(&value[..value.len().min(40)]).into_owned();
    format!("{text:?}")
}

/// Violations, a few of each kind kept and the rest counted.
#[derive(Debug, Default)]
struct Violations {
    list: Vec<String>,
    per_kind: BTreeMap<&'static str, usize>,
}

impl Violations {
    const KEEP: usize = 5;

    fn push(&mut self, kind: &'static str, message: String) {
        let n = self.per_kind.entry(kind).or_insert(0);
        *n += 1;
        if *n <= Self::KEEP {
            self.list.push(format!("{kind}: {message}"));
        }
    }

    fn finish(mut self) -> Vec<String> {
        for (kind, n) in &self.per_kind {
            if *n > Self::KEEP {
                self.list.push(format!("{kind}: {} more", n - Self::KEEP));
            }
        }
        self.list
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Two producers ("a" idempotent, "b" plain), one partition, everything consistent.
    fn good() -> (History, FinalLog) {
        let mut h = History::default();
        h.idempotent.insert("a".into());
        let log: Vec<(i64, Vec<u8>)> = [("a", 0), ("b", 0), ("a", 1), ("b", 0), ("b", 1)]
            .iter()
            .enumerate()
            .map(|(i, (p, s))| (i as i64, value(p, *s, 3)))
            .collect();
        for (o, v) in &log {
            h.produced.insert(v.clone());
            h.acked.push(Ack {
                partition: 0,
                offset: *o,
                value: v.clone(),
            });
            h.consumed.push((0, *o, v.clone()));
        }
        h.commits = vec![(0, 2), (0, 5)];
        h.commit_checks.push(CommitCheck {
            acknowledged: BTreeMap::from([(0, 2)]),
            read_back: BTreeMap::from([(0, 3)]),
        });
        (h, BTreeMap::from([(0, log)]))
    }

    fn violations(h: &History, log: &FinalLog) -> String {
        check(h, log).expect_err("a violation").join("\n")
    }

    #[test]
    fn a_consistent_history_passes() {
        let (h, log) = good();
        let checked = check(&h, &log).expect("consistent");
        assert_eq!(checked.log_records, 5);
        assert_eq!(checked.acked, 5);
    }

    #[test]
    fn a_lost_acknowledged_record_is_reported() {
        let (h, mut log) = good();
        log.get_mut(&0).expect("partition").truncate(4);
        assert!(violations(&h, &log).contains("lost: partition 0 offset 4"));
    }

    #[test]
    fn a_changed_record_is_reported() {
        let (h, mut log) = good();
        log.get_mut(&0).expect("partition")[1].1 = value("b", 7, 3);
        let v = violations(&h, &log);
        assert!(v.contains("phantom"), "{v}");
        assert!(v.contains("lost: partition 0 offset 1"), "{v}");
    }

    #[test]
    fn an_idempotent_duplicate_is_reported_but_a_plain_retry_is_not() {
        let (mut h, mut log) = good();
        let dup = value("a", 1, 3);
        log.get_mut(&0).expect("partition").push((5, dup));
        let v = violations(&h, &log);
        assert!(v.contains("duplicate"), "{v}");
        // The same for the plain producer "b" is allowed (a retry without idempotence).
        let (_, mut log) = good();
        log.get_mut(&0)
            .expect("partition")
            .push((5, value("b", 1, 3)));
        h.acked.clear();
        h.consumed.clear();
        check(&h, &log).expect("a plain producer may repeat its last record");
    }

    #[test]
    fn reordering_is_reported() {
        let (mut h, mut log) = good();
        log.get_mut(&0).expect("partition").swap(3, 4);
        for (o, v) in log.get_mut(&0).expect("partition").iter_mut().enumerate() {
            v.0 = o as i64;
        }
        h.acked.clear();
        h.consumed.clear();
        assert!(violations(&h, &log).contains("order"));
    }

    #[test]
    fn holes_in_offsets_are_reported() {
        let (mut h, mut log) = good();
        log.get_mut(&0).expect("partition")[4].0 = 9;
        h.acked.clear();
        h.consumed.clear();
        assert!(violations(&h, &log).contains("dense"));
    }

    #[test]
    fn an_unconsumed_acknowledged_record_is_reported() {
        let (mut h, log) = good();
        h.consumed.pop();
        assert!(violations(&h, &log).contains("unconsumed: partition 0 offset 4"));
    }

    #[test]
    fn commits_going_backwards_or_lost_are_reported() {
        let (mut h, log) = good();
        h.commit_checks.push(CommitCheck {
            acknowledged: BTreeMap::new(),
            read_back: BTreeMap::from([(0, 1)]),
        });
        assert!(violations(&h, &log).contains("commit backwards"));
        let (mut h, log) = good();
        h.commit_checks[0].read_back.clear();
        assert!(violations(&h, &log).contains("commit lost"));
    }

    #[test]
    fn values_round_trip_and_the_rng_replays() {
        assert_eq!(parse_value(&value("w1", 42, 10)), Some(("w1", 42)));
        let a: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        let b: Vec<u64> = (0..5)
            .scan(Rng::new(7), |r, _| Some(r.next_u64()))
            .collect();
        assert_eq!(a, b);
        assert_eq!(
            highest_commits(&[(0, 3), (1, 2), (0, 1)]),
            BTreeMap::from([(0, 3), (1, 2)])
        );
    }
}
