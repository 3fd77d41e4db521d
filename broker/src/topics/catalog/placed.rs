//! Topics placed by a cluster: the controller decides a topic's id, its partition count and
//! which partitions each broker holds, and this broker's reconciler applies its share here
//! (from a blocking thread: these calls open logs and write the catalog).
//!
//! The placement is taken as given, but checked again: an index outside the topic, or an
//! override this broker does not accept, is an error rather than something silently dropped.
//! The crash rules are [`super`]'s: the local partitions' directories first, the catalog
//! last, and a failure part-way rolled back at once.

use std::sync::Arc;

use super::{CatalogError, MAX_PARTITIONS, NewTopic, Overrides, Topic, TopicCatalog};
use crate::topics::config::TopicScope;
use crate::topics::config::alter::replace_all;
use crate::topics::name::validate_topic_name;

/// `local`'s indexes, ascending, each at or above `first` and below `total` and given once.
fn checked_local(
    topic: &str,
    total: u32,
    local: &[i32],
    first: u32,
) -> Result<Vec<u32>, CatalogError> {
    let refuse = |partition: i32, reason: &'static str| CatalogError::InvalidPlacement {
        topic: topic.to_owned(),
        total,
        partition,
        reason,
    };
    let mut checked = Vec::with_capacity(local.len());
    for &p in local {
        let index = u32::try_from(p)
            .ok()
            .filter(|&i| i < total)
            .ok_or_else(|| refuse(p, "is outside the topic"))?;
        if index < first {
            return Err(refuse(p, "is not a new partition"));
        }
        checked.push(index);
    }
    checked.sort_unstable();
    if let Some(twice) = checked.windows(2).find(|w| w[0] == w[1]) {
        return Err(refuse(
            i32::try_from(twice[0]).unwrap_or(i32::MAX),
            "is listed twice",
        ));
    }
    Ok(checked)
}

/// Overrides as AlterConfigs entries, to be checked and normalised like a client's.
fn as_entries(overrides: Overrides) -> Vec<(String, Option<String>)> {
    overrides.into_iter().map(|(k, v)| (k, Some(v))).collect()
}

impl TopicCatalog {
    /// Creates topic `name` as a cluster placed it: id `id`, `total` partitions of which only
    /// `local` have a directory and a log here (`local` may be empty: the topic is then known
    /// here but holds nothing). `overrides` are checked again as [`Self::create_with`] checks
    /// a client's. On failure nothing of the topic is left.
    ///
    /// # Errors
    /// A bad name or count, a local index outside the topic or given twice
    /// ([`CatalogError::InvalidPlacement`]), the name taken ([`CatalogError::AlreadyExists`])
    /// or colliding, a refused override, no room for the local partitions, or a failed write.
    pub fn create_placed(
        &self,
        name: &str,
        id: uuid::Uuid,
        total: u32,
        local: &[i32],
        overrides: Overrides,
    ) -> Result<Arc<Topic>, CatalogError> {
        let _one_change = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        validate_topic_name(name)
            .map_err(|reason| CatalogError::InvalidName(name.to_owned(), reason))?;
        if !(1..=MAX_PARTITIONS).contains(&total) {
            return Err(CatalogError::InvalidPartitions(i64::from(total)));
        }
        let local = checked_local(name, total, local, 0)?;
        self.check_name_free(name)?;
        let snapshot = self.config_snapshot();
        let overrides = replace_all(&TopicScope(&snapshot), &as_entries(overrides))?;
        if !local.is_empty() {
            let config = snapshot.layers().log_config(&overrides);
            self.check_space(
                name,
                u32::try_from(local.len()).unwrap_or(u32::MAX),
                &config,
            )?;
        }
        self.create_locked(NewTopic {
            name,
            id: Some(id),
            count: total,
            local: &local,
            overrides,
        })
    }

    /// Raises topic `name`'s partition count to `total`, opening logs here only for
    /// `local_new` (each a new partition: at or above the old count and below `total`). On
    /// failure the topic keeps its old count and nothing of the new partitions is left.
    ///
    /// # Errors
    /// An unknown topic, `total` not above the current count
    /// ([`CatalogError::NotMorePartitions`]) or above [`MAX_PARTITIONS`], a bad local index
    /// ([`CatalogError::InvalidPlacement`]), no room, or a failed write.
    pub fn add_partitions_placed(
        &self,
        name: &str,
        total: u32,
        local_new: &[i32],
    ) -> Result<(), CatalogError> {
        let _one_change = self
            .changes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let topic = self
            .get(name)
            .ok_or_else(|| CatalogError::UnknownTopic(name.to_owned()))?;
        let current = topic.count();
        if total <= current {
            return Err(CatalogError::NotMorePartitions {
                topic: name.to_owned(),
                current,
                requested: i64::from(total),
            });
        }
        if total > MAX_PARTITIONS {
            return Err(CatalogError::InvalidPartitions(i64::from(total)));
        }
        let local_new = checked_local(name, total, local_new, current)?;
        if !local_new.is_empty() {
            let config = self.log_options_for(&topic.overrides()).config;
            let added = u32::try_from(local_new.len()).unwrap_or(u32::MAX);
            self.check_space(name, added, &config)?;
        }
        self.grow_locked(&topic, total, &local_new)
    }

    /// Replaces topic `name`'s overrides whole by `overrides` (checked again), durably, then
    /// applies them to its local partitions' logs at once, as
    /// [`Self::alter_topic_configs`] does.
    ///
    /// # Errors
    /// An unknown topic, a refused override (nothing changes), or the catalog not written
    /// (the topic keeps its old overrides).
    pub fn replace_overrides(&self, name: &str, overrides: Overrides) -> Result<(), CatalogError> {
        let entries = as_entries(overrides);
        self.alter_topic_configs(name, |scope, _| replace_all(scope, &entries), false)
            .map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::log::{Flusher, LogConfig, LogOptions};
    use crate::topics::catalog::file::CATALOG_FILE;

    fn options() -> LogOptions {
        LogOptions::new(
            LogConfig {
                segment_bytes: 64 * 1024,
                ..LogConfig::default()
            },
            Flusher::new(1),
        )
    }

    fn id(n: u128) -> uuid::Uuid {
        uuid::Uuid::from_u128(n)
    }

    fn overrides(pairs: &[(&str, &str)]) -> Overrides {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn local(topic: &Topic) -> Vec<i32> {
        topic.local_partitions().map(|(i, _)| i).collect()
    }

    /// The partition directories of `topic` in `dir`, sorted.
    fn dirs(dir: &Path, topic: &str) -> Vec<String> {
        let mut found: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|n| {
                n.strip_prefix(topic)
                    .and_then(|rest| rest.strip_prefix('-'))
                    .is_some_and(|p| p.bytes().all(|b| b.is_ascii_digit()))
            })
            .collect();
        found.sort();
        found
    }

    fn catalog_text(dir: &Path) -> String {
        std::fs::read_to_string(dir.join(CATALOG_FILE)).unwrap()
    }

    /// Writes `body` as the catalog file, with its checksum line.
    fn write_catalog(dir: &Path, body: &str) {
        let crc = crc32fast::hash(body.as_bytes());
        std::fs::write(dir.join(CATALOG_FILE), format!("{body}crc32 {crc:08x}\n")).unwrap();
    }

    #[test]
    fn a_placed_topic_holds_only_its_local_partitions_and_survives_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog
            .create_placed(
                "spread",
                id(7),
                4,
                &[3, 1],
                overrides(&[("retention.ms", "1000")]),
            )
            .unwrap();
        assert_eq!(topic.partition_count(), 4);
        assert_eq!(topic.id(), Some(id(7)));
        assert_eq!(local(&topic), [1, 3]);
        assert!(topic.is_local(1) && topic.is_local(3));
        assert!(!topic.is_local(0) && !topic.is_local(2) && !topic.is_local(4));
        assert!(!topic.is_local(-1));
        assert!(topic.partition(0).is_none() && topic.log(2).is_none());
        assert_eq!(topic.log(3).unwrap().config().retention_ms, Some(1000));
        assert_eq!(dirs(dir.path(), "spread"), ["spread-1", "spread-3"]);
        let text = catalog_text(dir.path());
        assert!(
            text.starts_with(
                "topic spread 4\nid 00000000-0000-0000-0000-000000000007\nlocal 1,3\n\
                 config retention.ms 1000\ncrc32 "
            ),
            "{text}"
        );
        // Already there, whoever asks.
        assert!(matches!(
            catalog.create_placed("spread", id(8), 4, &[0], Overrides::new()),
            Err(CatalogError::AlreadyExists(_))
        ));
        assert!(matches!(
            catalog.create("spread", 1),
            Err(CatalogError::AlreadyExists(_))
        ));
        catalog.close().unwrap();
        drop((catalog, topic));

        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog.get("spread").unwrap();
        assert_eq!(topic.partition_count(), 4);
        assert_eq!(topic.id(), Some(id(7)));
        assert_eq!(local(&topic), [1, 3]);
        assert_eq!(topic.overrides()["retention.ms"], "1000");
        assert_eq!(topic.log(1).unwrap().config().retention_ms, Some(1000));
        assert_eq!(dirs(dir.path(), "spread"), ["spread-1", "spread-3"]);
    }

    #[test]
    fn a_topic_held_elsewhere_is_known_here_without_a_directory_and_deletes() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog
            .create_placed("elsewhere", id(1), 3, &[], Overrides::new())
            .unwrap();
        assert_eq!(topic.partition_count(), 3);
        assert_eq!(topic.local_partitions().count(), 0);
        assert!(dirs(dir.path(), "elsewhere").is_empty());
        assert!(catalog_text(dir.path()).starts_with(
            "topic elsewhere 3\nid 00000000-0000-0000-0000-000000000001\nlocal -\ncrc32 "
        ));
        // A placed topic that happens to be all here needs no `local` line.
        catalog
            .create_placed("whole", id(2), 2, &[0, 1], Overrides::new())
            .unwrap();
        assert!(
            catalog_text(dir.path())
                .contains("topic whole 2\nid 00000000-0000-0000-0000-000000000002\ncrc32 ")
        );
        drop((catalog, topic));

        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog.get("elsewhere").unwrap();
        assert_eq!((topic.partition_count(), local(&topic)), (3, vec![]));
        let whole = catalog.get("whole").unwrap();
        assert_eq!((whole.id(), local(&whole)), (Some(id(2)), vec![0, 1]));
        catalog.delete("elsewhere").unwrap();
        assert!(catalog.get("elsewhere").is_none());
        catalog.close().unwrap();
        drop((catalog, topic, whole));
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert!(catalog.get("elsewhere").is_none());
        assert!(catalog.get("whole").is_some());
    }

    #[test]
    fn placed_partitions_are_added_and_deleted_and_refused_when_they_do_not_fit() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        catalog
            .create_placed("grow", id(3), 2, &[1], Overrides::new())
            .unwrap();
        let refused = |result: Result<(), CatalogError>, partition: i32| match result {
            Err(CatalogError::InvalidPlacement { partition: p, .. }) => assert_eq!(p, partition),
            other => panic!("expected partition {partition} refused, got {other:?}"),
        };
        refused(catalog.add_partitions_placed("grow", 5, &[1]), 1);
        refused(catalog.add_partitions_placed("grow", 5, &[5]), 5);
        refused(catalog.add_partitions_placed("grow", 5, &[-1]), -1);
        refused(catalog.add_partitions_placed("grow", 5, &[3, 3]), 3);
        assert!(matches!(
            catalog.add_partitions_placed("grow", 2, &[]),
            Err(CatalogError::NotMorePartitions { current: 2, .. })
        ));
        assert!(matches!(
            catalog.add_partitions_placed("grow", MAX_PARTITIONS + 1, &[]),
            Err(CatalogError::InvalidPartitions(_))
        ));
        assert!(matches!(
            catalog.add_partitions_placed("absent", 5, &[]),
            Err(CatalogError::UnknownTopic(_))
        ));
        assert_eq!(catalog.get("grow").unwrap().partition_count(), 2);
        assert_eq!(dirs(dir.path(), "grow"), ["grow-1"]);

        catalog.add_partitions_placed("grow", 5, &[4, 2]).unwrap();
        let topic = catalog.get("grow").unwrap();
        assert_eq!((topic.partition_count(), local(&topic)), (5, vec![1, 2, 4]));
        assert_eq!(topic.id(), Some(id(3)), "the id stays with the topic");
        // Growing with nothing here still raises the count.
        catalog.add_partitions_placed("grow", 6, &[]).unwrap();
        assert_eq!(catalog.get("grow").unwrap().partition_count(), 6);
        assert_eq!(dirs(dir.path(), "grow"), ["grow-1", "grow-2", "grow-4"]);
        catalog.close().unwrap();
        drop((catalog, topic));

        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog.get("grow").unwrap();
        assert_eq!((topic.partition_count(), local(&topic)), (6, vec![1, 2, 4]));
        assert_eq!(topic.id(), Some(id(3)));
        catalog.delete("grow").unwrap();
        assert!(dirs(dir.path(), "grow").is_empty());
        drop((catalog, topic));
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert!(catalog.list().is_empty());
    }

    #[test]
    fn a_bad_placement_or_override_creates_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        for (total, local) in [(3, vec![3]), (3, vec![-2]), (3, vec![0, 0])] {
            assert!(
                matches!(
                    catalog.create_placed("bad", id(4), total, &local, Overrides::new()),
                    Err(CatalogError::InvalidPlacement { .. })
                ),
                "{local:?}"
            );
        }
        for total in [0, MAX_PARTITIONS + 1] {
            assert!(matches!(
                catalog.create_placed("bad", id(4), total, &[], Overrides::new()),
                Err(CatalogError::InvalidPartitions(_))
            ));
        }
        assert!(matches!(
            catalog.create_placed("bad name", id(4), 1, &[0], Overrides::new()),
            Err(CatalogError::InvalidName(..))
        ));
        let refused = overrides(&[("retention.ms", "-5")]);
        assert!(matches!(
            catalog.create_placed("bad", id(4), 2, &[0], refused),
            Err(CatalogError::InvalidConfig(_))
        ));
        let unknown = overrides(&[("no.such.config", "1")]);
        assert!(matches!(
            catalog.create_placed("bad", id(4), 2, &[0], unknown),
            Err(CatalogError::InvalidConfig(_))
        ));
        assert!(catalog.get("bad").is_none());
        assert!(dirs(dir.path(), "bad").is_empty());
        // The overrides are kept normalised, as a client's are.
        let topic = catalog
            .create_placed(
                "good",
                id(5),
                1,
                &[0],
                overrides(&[("cleanup.policy", "compact, delete")]),
            )
            .unwrap();
        assert_eq!(topic.overrides()["cleanup.policy"], "compact,delete");
    }

    #[test]
    fn directories_of_partitions_not_held_here_are_removed_at_start_up() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        catalog
            .create_placed("spread", id(6), 3, &[1], Overrides::new())
            .unwrap();
        catalog.close().unwrap();
        drop(catalog);
        // Left by a crash, or by a placement this broker no longer holds.
        for orphan in ["spread-0", "spread-2", "spread-9"] {
            std::fs::create_dir(dir.path().join(orphan)).unwrap();
            std::fs::write(
                dir.path().join(orphan).join("00000000000000000000.log"),
                b"old",
            )
            .unwrap();
        }
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert_eq!(dirs(dir.path(), "spread"), ["spread-1"]);
        assert_eq!(local(&catalog.get("spread").unwrap()), [1]);
    }

    #[test]
    fn single_broker_topics_are_written_as_before_and_old_files_read() {
        let dir = tempfile::tempdir().unwrap();
        // A catalog as written before clusters (and before per-topic configs).
        write_catalog(dir.path(), "topic old 2\n");
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let old = catalog.get("old").unwrap();
        assert_eq!(
            (old.partition_count(), old.id(), local(&old)),
            (2, None, vec![0, 1])
        );
        catalog.create("plain", 3).unwrap();
        catalog.add_partitions("plain", 4).unwrap();
        catalog
            .create_with(
                "tuned",
                1,
                &[("retention.ms".to_owned(), Some("5".to_owned()))],
            )
            .unwrap();
        let body = "topic old 2\ntopic plain 4\ntopic tuned 1\nconfig retention.ms 5\n";
        let crc = crc32fast::hash(body.as_bytes());
        assert_eq!(catalog_text(dir.path()), format!("{body}crc32 {crc:08x}\n"));
    }

    #[test]
    fn damaged_placement_lines_stop_the_open() {
        let cases = [
            "id 00000000-0000-0000-0000-000000000001\ntopic t 2\n",
            "local 0\ntopic t 2\n",
            "topic t 2\nlocal 2\n",
            "topic t 2\nlocal 1,0\n",
            "topic t 2\nlocal 0,0\n",
            "topic t 2\nlocal \n",
            "topic t 2\nlocal x\n",
            "topic t 2\nlocal -1\n",
            "topic t 2\nlocal 0\nlocal 1\n",
            "topic t 2\nid nonsense\n",
            "topic t 2\nid 00000000-0000-0000-0000-000000000001\nid 00000000-0000-0000-0000-000000000002\n",
            "topic t 2\nplace 0\n",
            "topic t 10001\n",
        ];
        for body in cases {
            let dir = tempfile::tempdir().unwrap();
            write_catalog(dir.path(), body);
            assert!(
                matches!(
                    TopicCatalog::open(dir.path(), options()),
                    Err(CatalogError::Damaged { .. })
                ),
                "{body:?}"
            );
        }
        // The same lines, well formed, read.
        let dir = tempfile::tempdir().unwrap();
        write_catalog(
            dir.path(),
            "topic t 2\nconfig retention.ms 9\nlocal 1\nid 00000000-0000-0000-0000-000000000001\n",
        );
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog.get("t").unwrap();
        assert_eq!((topic.id(), local(&topic)), (Some(id(1)), vec![1]));
        assert_eq!(topic.overrides()["retention.ms"], "9");
    }

    #[test]
    fn replaced_overrides_are_whole_durable_and_applied_live() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog
            .create_placed(
                "tuned",
                id(9),
                3,
                &[0, 2],
                overrides(&[("retention.ms", "1000"), ("segment.ms", "60000")]),
            )
            .unwrap();
        catalog
            .replace_overrides("tuned", overrides(&[("retention.ms", "2000")]))
            .unwrap();
        let log = Arc::clone(topic.log(2).unwrap());
        assert_eq!(log.config().retention_ms, Some(2000), "applied live");
        assert_eq!(*topic.overrides(), overrides(&[("retention.ms", "2000")]));
        // A refused one changes nothing.
        assert!(matches!(
            catalog.replace_overrides("tuned", overrides(&[("retention.ms", "x")])),
            Err(CatalogError::InvalidConfig(_))
        ));
        assert!(matches!(
            catalog.replace_overrides("absent", Overrides::new()),
            Err(CatalogError::UnknownTopic(_))
        ));
        assert_eq!(log.config().retention_ms, Some(2000));
        catalog.close().unwrap();
        drop((catalog, topic, log));

        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let topic = catalog.get("tuned").unwrap();
        assert_eq!(*topic.overrides(), overrides(&[("retention.ms", "2000")]));
        assert_eq!(topic.log(0).unwrap().config().retention_ms, Some(2000));
        assert_eq!((topic.id(), local(&topic)), (Some(id(9)), vec![0, 2]));
        catalog
            .replace_overrides("tuned", Overrides::new())
            .unwrap();
        drop((catalog, topic));
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert!(catalog.get("tuned").unwrap().overrides().is_empty());
    }
}
