//! The checks over a [`History`], named as Jepsen names them in its Kafka analyses.
//!
//! Every acknowledgement counts as an observation of its offset (by `ack:<producer>`), like
//! every read: so a value acknowledged at one offset and read at another is a duplicate, and
//! an offset acknowledged for one value and read holding another is inconsistent.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use super::{History, Outcome, Send};

/// An acknowledged value that no final read returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lost {
    pub producer: String,
    pub seq: u64,
    pub partition: i32,
    pub offset: i64,
    pub value: String,
    /// Readers that returned it before the final reads (it was there, then went away).
    pub seen_by: Vec<String>,
}

/// One offset seen holding more than one value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InconsistentOffset {
    pub partition: i32,
    pub offset: i64,
    /// Each value seen there, with who saw it (readers, `ack:<producer>`), sorted.
    pub values: Vec<(String, Vec<String>)>,
}

/// Two acknowledged sends of one producer to one partition whose offsets do not increase in
/// the order they were sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reorder {
    pub producer: String,
    pub partition: i32,
    /// `(seq, offset, value)` of the send that came first.
    pub earlier: (u64, i64, String),
    /// The send that came next (among the acknowledged), at an offset not above the first's.
    pub later: (u64, i64, String),
}

/// Why a value read should not have been there.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PhantomKind {
    /// Nobody sent it.
    NeverSent,
    /// It was sent to another partition.
    OtherPartition { sent_to: i32 },
    /// Its send definitely failed.
    Failed,
}

/// A value read that the history cannot explain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Phantom {
    pub reader: String,
    pub partition: i32,
    pub offset: i64,
    pub value: String,
    pub kind: PhantomKind,
}

/// One value seen at more than one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Duplicate {
    pub value: String,
    /// `(partition, offset)`s, sorted.
    pub at: Vec<(i32, i64)>,
}

/// A committed offset lower than one observed before it for the same group and partition.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommitBackwards {
    pub group: String,
    pub partition: i32,
    pub from: i64,
    /// Who saw `from`.
    pub from_by: String,
    pub to: i64,
    /// Who saw `to`.
    pub to_by: String,
    /// Where in that group and partition's observations the drop came (the second is 1).
    pub observation: usize,
}

/// What [`check`] found: counts of what it looked at, and every anomaly.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Report {
    pub sends: usize,
    pub acknowledged: usize,
    pub failed: usize,
    pub indeterminate: usize,
    /// Indeterminate sends that some read returned (written after all).
    pub indeterminate_read: usize,
    pub reads: usize,
    /// Distinct `(partition, offset)`s observed.
    pub offsets: usize,
    pub commits: usize,
    pub lost: Vec<Lost>,
    pub inconsistent_offsets: Vec<InconsistentOffset>,
    pub reordered: Vec<Reorder>,
    pub phantoms: Vec<Phantom>,
    pub duplicates: Vec<Duplicate>,
    pub commits_backwards: Vec<CommitBackwards>,
}

impl Report {
    /// No anomaly of any kind.
    pub fn is_valid(&self) -> bool {
        self.lost.is_empty()
            && self.inconsistent_offsets.is_empty()
            && self.reordered.is_empty()
            && self.phantoms.is_empty()
            && self.duplicates.is_empty()
            && self.commits_backwards.is_empty()
    }
}

/// Most anomalies of one kind [`Report`]'s `Display` lists; the rest are counted.
const LISTED_MAX: usize = 20;

fn list<T>(
    f: &mut fmt::Formatter<'_>,
    name: &str,
    items: &[T],
    show: impl Fn(&T) -> String,
) -> fmt::Result {
    if items.is_empty() {
        return Ok(());
    }
    writeln!(f, "{name}: {}", items.len())?;
    for item in items.iter().take(LISTED_MAX) {
        writeln!(f, "  {}", show(item))?;
    }
    if items.len() > LISTED_MAX {
        writeln!(f, "  … {} more", items.len() - LISTED_MAX)?;
    }
    Ok(())
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} sends ({} ok, {} fail, {} info of which {} read), {} reads of {} offsets, {} commits: {}",
            self.sends,
            self.acknowledged,
            self.failed,
            self.indeterminate,
            self.indeterminate_read,
            self.reads,
            self.offsets,
            self.commits,
            if self.is_valid() {
                "valid"
            } else {
                "ANOMALIES"
            }
        )?;
        list(f, "lost", &self.lost, |l| {
            let read = if l.seen_by.is_empty() {
                "never read".to_owned()
            } else {
                format!(
                    "read by {}, then missing from the final reads",
                    l.seen_by.join(", ")
                )
            };
            format!(
                "{} (producer {} seq {}) acknowledged at {}/{}, {read}",
                l.value, l.producer, l.seq, l.partition, l.offset
            )
        })?;
        list(f, "inconsistent offsets", &self.inconsistent_offsets, |i| {
            let values: Vec<String> = i
                .values
                .iter()
                .map(|(v, by)| format!("{v} (by {})", by.join(", ")))
                .collect();
            format!("{}/{}: {}", i.partition, i.offset, values.join(" vs "))
        })?;
        list(f, "reordered", &self.reordered, |r| {
            format!(
                "producer {} partition {}: seq {} ({}) at {}, then seq {} ({}) at {}",
                r.producer,
                r.partition,
                r.earlier.0,
                r.earlier.2,
                r.earlier.1,
                r.later.0,
                r.later.2,
                r.later.1
            )
        })?;
        list(f, "phantoms", &self.phantoms, |p| {
            let why = match p.kind {
                PhantomKind::NeverSent => "never sent".to_owned(),
                PhantomKind::OtherPartition { sent_to } => format!("sent to partition {sent_to}"),
                PhantomKind::Failed => "its send definitely failed".to_owned(),
            };
            format!(
                "{} read by {} at {}/{}: {why}",
                p.value, p.reader, p.partition, p.offset
            )
        })?;
        list(f, "duplicates", &self.duplicates, |d| {
            let at: Vec<String> = d.at.iter().map(|(p, o)| format!("{p}/{o}")).collect();
            format!("{} at {}", d.value, at.join(", "))
        })?;
        list(f, "commits backwards", &self.commits_backwards, |c| {
            format!(
                "group {} partition {}: {} (by {}) after {} (by {}), observation {}",
                c.group, c.partition, c.to, c.to_by, c.from, c.from_by, c.observation
            )
        })
    }
}

/// Checks `history`; see the module docs of [`super`] for the rules and [`Report`] for what
/// comes out.
pub fn check(history: &History) -> Report {
    let mut report = Report {
        sends: history.sends.len(),
        reads: history.reads.len(),
        commits: history.commits.len(),
        ..Report::default()
    };
    let sent: HashMap<&str, &Send> = history
        .sends
        .iter()
        .map(|send| (send.value.as_str(), send))
        .collect();
    // (partition, offset) -> value -> observers; value -> places.
    let mut at: BTreeMap<(i32, i64), BTreeMap<&str, BTreeSet<String>>> = BTreeMap::new();
    let mut places: BTreeMap<&str, BTreeSet<(i32, i64)>> = BTreeMap::new();
    for send in &history.sends {
        match (send.outcome, send.offset) {
            (Outcome::Ok, Some(offset)) => {
                report.acknowledged += 1;
                let key = (send.partition, offset);
                at.entry(key)
                    .or_default()
                    .entry(&send.value)
                    .or_default()
                    .insert(format!("ack:{}", send.producer));
                places.entry(&send.value).or_default().insert(key);
            }
            (Outcome::Fail, _) => report.failed += 1,
            // `read_history` refuses an ok without offset; one built by hand is unknown.
            (Outcome::Ok | Outcome::Info, _) => report.indeterminate += 1,
        }
    }
    let mut read_values: BTreeSet<&str> = BTreeSet::new();
    // value -> readers, for the reads before the final ones; and the final reads' values.
    let mut read_early: HashMap<&str, BTreeSet<&str>> = HashMap::new();
    let mut read_finally: BTreeSet<&str> = BTreeSet::new();
    let any_final = history.reads.iter().any(|r| r.final_read);
    for read in &history.reads {
        if read.final_read || !any_final {
            read_finally.insert(&read.value);
        } else {
            read_early
                .entry(&read.value)
                .or_default()
                .insert(&read.reader);
        }
        let key = (read.partition, read.offset);
        at.entry(key)
            .or_default()
            .entry(&read.value)
            .or_default()
            .insert(read.reader.clone());
        places.entry(&read.value).or_default().insert(key);
        read_values.insert(&read.value);
        let kind = match sent.get(read.value.as_str()) {
            None => Some(PhantomKind::NeverSent),
            Some(send) if send.partition != read.partition => Some(PhantomKind::OtherPartition {
                sent_to: send.partition,
            }),
            Some(send) if send.outcome == Outcome::Fail => Some(PhantomKind::Failed),
            Some(_) => None,
        };
        if let Some(kind) = kind {
            report.phantoms.push(Phantom {
                reader: read.reader.clone(),
                partition: read.partition,
                offset: read.offset,
                value: read.value.clone(),
                kind,
            });
        }
    }
    report.offsets = at.len();
    report.indeterminate_read = history
        .sends
        .iter()
        .filter(|s| s.outcome == Outcome::Info && read_values.contains(s.value.as_str()))
        .count();
    for ((partition, offset), values) in &at {
        if values.len() > 1 {
            report.inconsistent_offsets.push(InconsistentOffset {
                partition: *partition,
                offset: *offset,
                values: values
                    .iter()
                    .map(|(v, by)| ((*v).to_owned(), by.iter().cloned().collect()))
                    .collect(),
            });
        }
    }
    for (value, places) in &places {
        if places.len() > 1 {
            report.duplicates.push(Duplicate {
                value: (*value).to_owned(),
                at: places.iter().copied().collect(),
            });
        }
    }
    report.lost = lost(history, &read_finally, &read_early);
    report.reordered = reordered(history);
    report.commits_backwards = commits_backwards(history);
    report
        .phantoms
        .sort_by(|a, b| (a.partition, a.offset, &a.value).cmp(&(b.partition, b.offset, &b.value)));
    report.phantoms.dedup_by(|a, b| {
        (a.partition, a.offset, &a.value, a.kind) == (b.partition, b.offset, &b.value, b.kind)
    });
    report
}

fn lost(
    history: &History,
    read_finally: &BTreeSet<&str>,
    read_early: &HashMap<&str, BTreeSet<&str>>,
) -> Vec<Lost> {
    let mut lost: Vec<Lost> = history
        .sends
        .iter()
        .filter(|s| s.outcome == Outcome::Ok && !read_finally.contains(s.value.as_str()))
        .map(|s| Lost {
            producer: s.producer.clone(),
            seq: s.seq,
            partition: s.partition,
            offset: s.offset.unwrap_or(-1),
            value: s.value.clone(),
            seen_by: read_early
                .get(s.value.as_str())
                .map(|readers| readers.iter().map(|r| (*r).to_owned()).collect())
                .unwrap_or_default(),
        })
        .collect();
    lost.sort_by(|a, b| (a.partition, a.offset, &a.value).cmp(&(b.partition, b.offset, &b.value)));
    lost
}

/// A producer's sends to one partition: `(producer, partition)`.
type Stream<'a> = (&'a str, i32);

/// An acknowledged send: `(seq, offset, value)`.
type AckedSend<'a> = (u64, i64, &'a str);

/// A commit observation: `(index in the history's commits, highest offset so far, who saw
/// that highest)`.
type Observed<'a> = (usize, i64, &'a str);

fn reordered(history: &History) -> Vec<Reorder> {
    // (producer, partition) -> (seq, offset, value) of its acknowledged sends.
    let mut acked: BTreeMap<Stream<'_>, Vec<AckedSend<'_>>> = BTreeMap::new();
    for send in &history.sends {
        if let (Outcome::Ok, Some(offset)) = (send.outcome, send.offset) {
            acked
                .entry((&send.producer, send.partition))
                .or_default()
                .push((send.seq, offset, &send.value));
        }
    }
    let mut out = Vec::new();
    for ((producer, partition), mut sends) in acked {
        sends.sort_unstable();
        for pair in sends.windows(2) {
            let (a, b) = (pair[0], pair[1]);
            if b.1 <= a.1 {
                out.push(Reorder {
                    producer: producer.to_owned(),
                    partition,
                    earlier: (a.0, a.1, a.2.to_owned()),
                    later: (b.0, b.1, b.2.to_owned()),
                });
            }
        }
    }
    out
}

fn commits_backwards(history: &History) -> Vec<CommitBackwards> {
    // (group, partition) -> its observations so far.
    let mut seen: BTreeMap<(&str, i32), Vec<Observed<'_>>> = BTreeMap::new();
    let mut out = Vec::new();
    for (index, commit) in history.commits.iter().enumerate() {
        let earlier = seen.entry((&commit.group, commit.partition)).or_default();
        // Only what was recorded before this observation's request went out.
        let bound = index.saturating_sub(commit.overlaps);
        let before = earlier.partition_point(|&(at, _, _)| at < bound);
        let highest = before.checked_sub(1).map(|k| earlier[k]);
        if let Some((_, from, from_by)) = highest.filter(|&(_, from, _)| commit.offset < from) {
            out.push(CommitBackwards {
                group: commit.group.clone(),
                partition: commit.partition,
                from,
                from_by: from_by.to_owned(),
                to: commit.offset,
                to_by: commit.by.clone(),
                observation: earlier.len(),
            });
        }
        let running = match earlier.last() {
            Some(&(_, high, by)) if high >= commit.offset => (index, high, by),
            _ => (index, commit.offset, commit.by.as_str()),
        };
        earlier.push(running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::super::{Commit, Op, Read};
    use super::*;

    fn send(producer: &str, seq: u64, partition: i32, outcome: Outcome, offset: i64) -> Op {
        Op::Send(Send {
            producer: producer.into(),
            seq,
            partition,
            value: format!("{producer}-{seq}"),
            outcome,
            offset: (outcome == Outcome::Ok).then_some(offset),
        })
    }

    /// A read; those of `node-*` and `assign` are final, as in the campaign.
    fn read(reader: &str, partition: i32, offset: i64, value: &str) -> Op {
        Op::Read(Read {
            reader: reader.into(),
            partition,
            offset,
            value: value.into(),
            final_read: reader.starts_with("node-") || reader == "assign",
        })
    }

    fn commit(group: &str, partition: i32, offset: i64) -> Op {
        Op::Commit(Commit {
            group: group.into(),
            partition,
            offset,
            by: "member".into(),
            overlaps: 0,
        })
    }

    fn history(ops: impl IntoIterator<Item = Op>) -> History {
        let mut h = History::default();
        ops.into_iter().for_each(|op| h.push(op));
        h
    }

    /// Two producers on two partitions, everything read by two readers, an indeterminate
    /// send that was written (read) and one that was not, a failed send, commits rising.
    fn clean() -> Vec<Op> {
        let mut ops = vec![
            send("a", 0, 0, Outcome::Ok, 0),
            send("b", 0, 0, Outcome::Ok, 1),
            send("a", 1, 0, Outcome::Info, -1),
            send("a", 2, 0, Outcome::Ok, 3),
            send("a", 3, 1, Outcome::Ok, 0),
            send("b", 1, 1, Outcome::Info, -1),
            send("b", 2, 1, Outcome::Fail, -1),
            send("b", 3, 1, Outcome::Ok, 1),
        ];
        for reader in ["node-1", "assign"] {
            ops.extend([
                read(reader, 0, 0, "a-0"),
                read(reader, 0, 1, "b-0"),
                read(reader, 0, 2, "a-1"),
                read(reader, 0, 3, "a-2"),
                read(reader, 1, 0, "a-3"),
                read(reader, 1, 1, "b-3"),
            ]);
        }
        ops.extend([
            commit("g", 0, 2),
            commit("g", 1, 1),
            commit("g", 0, 4),
            commit("g", 0, 4),
        ]);
        ops
    }

    #[test]
    fn jepsen_a_clean_history_is_valid_and_indeterminate_sends_are_no_loss() {
        let report = check(&history(clean()));
        assert!(report.is_valid(), "{report}");
        assert_eq!(
            (report.sends, report.acknowledged, report.failed),
            (8, 5, 1)
        );
        assert_eq!((report.indeterminate, report.indeterminate_read), (2, 1));
        assert_eq!((report.reads, report.offsets, report.commits), (12, 6, 4));
        assert!(report.to_string().contains("valid"), "{report}");
        // Nothing read at all for an indeterminate send, and no reads of a partition that
        // holds only indeterminate sends: still valid.
        let report = check(&history([send("c", 0, 5, Outcome::Info, -1)]));
        assert!(report.is_valid(), "{report}");
    }

    #[test]
    fn jepsen_an_acknowledged_value_never_read_is_lost() {
        let mut ops = clean();
        ops.retain(|op| !matches!(op, Op::Read(r) if r.value == "a-2"));
        let report = check(&history(ops));
        assert_eq!(
            report.lost,
            vec![Lost {
                producer: "a".into(),
                seq: 2,
                partition: 0,
                offset: 3,
                value: "a-2".into(),
                seen_by: Vec::new(),
            }]
        );
        assert!(!report.is_valid());
        assert!(report.to_string().contains("lost: 1"), "{report}");
        // Read by only one final reader is enough.
        let mut ops = clean();
        ops.retain(|op| !matches!(op, Op::Read(r) if r.value == "a-2" && r.reader == "assign"));
        assert!(check(&history(ops)).is_valid());
        // Read by the group during the run, then gone from the final reads: lost too.
        let mut ops = clean();
        ops.retain(|op| !matches!(op, Op::Read(r) if r.value == "a-2" && r.final_read));
        ops.push(read("group", 0, 3, "a-2"));
        let report = check(&history(ops));
        assert_eq!(report.lost.len(), 1, "{report}");
        assert_eq!(report.lost[0].seen_by, vec!["group".to_owned()]);
        assert!(
            report
                .to_string()
                .contains("read by group, then missing from the final reads"),
            "{report}"
        );
        // A history without final reads: any read counts.
        let ops: Vec<Op> = clean()
            .into_iter()
            .map(|op| match op {
                Op::Read(mut r) => {
                    r.final_read = false;
                    Op::Read(r)
                }
                other => other,
            })
            .collect();
        assert!(check(&history(ops)).is_valid());
    }

    #[test]
    fn jepsen_two_values_at_one_offset_are_inconsistent() {
        let mut ops = clean();
        // node-2 serves another history of partition 0 from offset 2 on.
        ops.push(read("node-2", 0, 2, "b-1"));
        let report = check(&history(ops));
        assert_eq!(report.inconsistent_offsets.len(), 1, "{report}");
        let i = &report.inconsistent_offsets[0];
        assert_eq!((i.partition, i.offset), (0, 2));
        assert_eq!(
            i.values,
            vec![
                ("a-1".into(), vec!["assign".into(), "node-1".into()]),
                ("b-1".into(), vec!["node-2".into()]),
            ]
        );
        // b-1 was sent to partition 1: also a phantom here, and at two places.
        assert_eq!(
            report.phantoms[0].kind,
            PhantomKind::OtherPartition { sent_to: 1 }
        );
        // An acknowledgement is an observation: acked at 3, another value read there.
        let mut ops = clean();
        for op in &mut ops {
            if let Op::Read(r) = op {
                if r.value == "a-2" {
                    r.value = "a-1".into();
                }
            }
        }
        let report = check(&history(ops));
        assert_eq!(report.inconsistent_offsets.len(), 1, "{report}");
        assert_eq!(
            report.inconsistent_offsets[0].values[1],
            ("a-2".into(), vec!["ack:a".into()])
        );
        assert_eq!(report.lost.len(), 1);
        assert_eq!(report.duplicates.len(), 1);
    }

    #[test]
    fn jepsen_acknowledged_offsets_out_of_send_order_are_reordered() {
        let ops = vec![
            send("a", 0, 0, Outcome::Ok, 0),
            send("a", 2, 0, Outcome::Ok, 1),
            send("a", 1, 0, Outcome::Ok, 2),
            // Another partition and another producer do not count.
            send("a", 3, 1, Outcome::Ok, 0),
            send("b", 0, 0, Outcome::Ok, 3),
            read("r", 0, 0, "a-0"),
            read("r", 0, 1, "a-2"),
            read("r", 0, 2, "a-1"),
            read("r", 1, 0, "a-3"),
            read("r", 0, 3, "b-0"),
        ];
        let report = check(&history(ops));
        assert_eq!(
            report.reordered,
            vec![Reorder {
                producer: "a".into(),
                partition: 0,
                earlier: (1, 2, "a-1".into()),
                later: (2, 1, "a-2".into()),
            }]
        );
        assert!(report.lost.is_empty() && report.duplicates.is_empty());
        // Recorded out of order but acknowledged in order: fine.
        let ops = vec![
            send("a", 1, 0, Outcome::Ok, 1),
            send("a", 0, 0, Outcome::Ok, 0),
            read("r", 0, 0, "a-0"),
            read("r", 0, 1, "a-1"),
        ];
        assert!(check(&history(ops)).is_valid());
    }

    #[test]
    fn jepsen_values_nobody_sent_or_whose_send_failed_are_phantoms() {
        let mut ops = clean();
        ops.push(read("node-3", 0, 4, "z-9"));
        ops.push(read("node-3", 1, 2, "b-2"));
        let report = check(&history(ops));
        let kinds: Vec<(i64, PhantomKind)> =
            report.phantoms.iter().map(|p| (p.offset, p.kind)).collect();
        assert_eq!(
            kinds,
            vec![(4, PhantomKind::NeverSent), (2, PhantomKind::Failed)]
        );
        assert!(
            report
                .to_string()
                .contains("z-9 read by node-3 at 0/4: never sent")
        );
    }

    #[test]
    fn jepsen_one_value_at_two_offsets_is_a_duplicate() {
        let mut ops = clean();
        // a-0 written again (a retry that was not deduplicated) at offset 4.
        ops.push(read("node-1", 0, 4, "a-0"));
        let report = check(&history(ops));
        assert_eq!(
            report.duplicates,
            vec![Duplicate {
                value: "a-0".into(),
                at: vec![(0, 0), (0, 4)],
            }]
        );
        assert!(report.inconsistent_offsets.is_empty() && report.lost.is_empty());
        // An indeterminate send read twice is a duplicate too.
        let mut ops = clean();
        ops.push(read("assign", 0, 4, "a-1"));
        assert_eq!(check(&history(ops)).duplicates.len(), 1);
    }

    #[test]
    fn jepsen_a_committed_offset_going_back_is_reported() {
        let mut ops = clean();
        ops.push(commit("g", 0, 3));
        ops.push(commit("h", 0, 1));
        let report = check(&history(ops));
        assert_eq!(
            report.commits_backwards,
            vec![CommitBackwards {
                group: "g".into(),
                partition: 0,
                from: 4,
                from_by: "member".into(),
                to: 3,
                to_by: "member".into(),
                observation: 3,
            }]
        );
        assert!(
            report
                .to_string()
                .contains("group g partition 0: 3 (by member) after 4 (by member)")
        );
    }

    #[test]
    fn jepsen_a_read_back_is_not_compared_with_the_commits_it_overlapped() {
        let fetch = |offset, overlaps| {
            Op::Commit(Commit {
                group: "g".into(),
                partition: 0,
                offset,
                by: "fetch".into(),
                overlaps,
            })
        };
        // Sent after 5 was acknowledged, answered after 7 and 9 were: it may have read 7.
        let ops = vec![
            commit("g", 0, 5),
            commit("g", 0, 7),
            commit("g", 1, 1),
            commit("g", 0, 9),
            fetch(7, 3),
            commit("g", 0, 11),
        ];
        assert!(check(&history(ops.clone())).is_valid());
        // Below what was acknowledged before it was sent: backwards.
        let mut lower = ops.clone();
        lower[4] = fetch(4, 3);
        let report = check(&history(lower));
        assert_eq!(report.commits_backwards.len(), 1, "{report}");
        assert_eq!(
            (
                report.commits_backwards[0].from,
                report.commits_backwards[0].to
            ),
            (5, 4)
        );
        // Claiming no overlap, it went back from 9.
        let mut strict = ops;
        strict[4] = fetch(7, 0);
        let report = check(&history(strict));
        assert_eq!(report.commits_backwards[0].from, 9, "{report}");
        // A later commit below what the read-back saw: backwards.
        let ops = vec![commit("g", 0, 5), fetch(8, 0), commit("g", 0, 6)];
        assert_eq!(check(&history(ops)).commits_backwards.len(), 1);
    }

    #[test]
    fn jepsen_the_report_lists_a_bounded_number_of_each_kind() {
        let ops: Vec<Op> = (0..30)
            .map(|i| send("a", i, 0, Outcome::Ok, i64::try_from(i).unwrap()))
            .collect();
        let report = check(&history(ops));
        assert_eq!(report.lost.len(), 30);
        let text = report.to_string();
        assert!(text.contains("… 10 more"), "{text}");
        assert_eq!(text.lines().count(), 1 + 1 + LISTED_MAX + 1);
    }
}
