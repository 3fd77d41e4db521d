//! The persisted set of topics and their partitions ([`Partition`]: a log with its producer
//! table).
//!
//! File `<data-dir>/topics`, written atomically (temporary file, sync, rename, directory sync):
//!
//! ```text
//! topic <name> <partitions>      one line per topic, names sorted
//! id <uuid>                      optional: the id a cluster gave the topic above
//! local <p>,<p>,... | local -    optional: the partitions of the topic above held here
//! config <key> <value>           zero or more: an override of the topic above, keys sorted
//! crc32 <8 hex digits>           CRC-32 of every byte before this line
//! ```
//!
//! `id` and `local` lines were added with clusters, where a topic's partitions are spread
//! over brokers: `<partitions>` is the topic's count cluster-wide, and `local` lists the
//! indexes (ascending, each below the count) that this broker holds and keeps a log for, or
//! `-` for none (the topic is known here but held elsewhere). Without a `local` line every
//! partition is local, which is how a file written before them reads; a topic created by a
//! broker on its own (no id, all partitions local) is written with neither line, byte for
//! byte as before. A topic placed by a cluster ([`placed`]) has an `id` line, and a `local`
//! line unless it holds every partition here. An older broker refuses a file with either line
//! as damaged, never misreads it.
//!
//! `config` lines were added with per-topic configuration: a file written before them (no
//! `config` line) reads as topics without overrides, and a catalog whose topics have no
//! overrides is written byte for byte as before. Values are stored in their normalised text
//! ([`super::config`]), which never holds whitespace, so each line splits into three words.
//! An override is written with the topic, in the same atomic replacement, so after a crash a
//! topic has either all of its old overrides or all of its new ones. Overrides are checked
//! when read: a value this broker does not accept is reported as damage, not ignored.
//!
//! Partition `p` of topic `t` lives in `<data-dir>/<t>-<p>/`. Creating writes the partition
//! directories first and the catalog last; deleting removes the catalog entry first and the
//! directories after. A crash in between leaves directories that no catalog entry names: they
//! are removed at start-up, so a topic created again later never inherits old records. An
//! orphan is any directory `<t>-<p>` whose `p` is not a local partition of topic `t`: only
//! local partitions ever have a directory here.
//!
//! A create that fails part-way (the disk filled after some of its partitions) is rolled back
//! at once: the directories it made are removed and the catalog is rewritten without the
//! topic, then the data directory is synced, so the space comes back without a restart. A
//! create whose partitions cannot all fit is refused before anything is allocated
//! ([`CatalogError::NoSpace`], from [`super::space`]).
//!
//! Adding partitions (CreatePartitions) follows the same order: the new partitions'
//! directories first, then the catalog with the higher count. A crash before the catalog is
//! written leaves directories past the recorded count, which start-up removes as orphans; a
//! failure part-way is rolled back the same way as a create (directories removed, catalog
//! rewritten with the old count). Partitions are never removed from a topic.
//!
//! The same order holds for topics placed by a cluster ([`placed`]): creating one makes the
//! directories of its local partitions only (none when it holds nothing here), growing one
//! makes those of its new local partitions only, and both are rolled back the same way.
//!
//! Start-up opens the partition logs on a bounded pool of threads ([`super::parallel`]):
//! recovery after a crash is mostly waiting for the disk, and thousands of partitions opened
//! one after the other took up to a minute. Their directory syncs are made together once all
//! are open ([`super::deferred_sync`]), before the catalog is returned.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, PoisonError, RwLock};

use super::config::{
    BrokerConfigStore, BrokerScope, CleanerSettings, ConfigSnapshot, InvalidConfig, ResolvedConfig,
    Scope, TopicScope,
};

use super::deferred_sync::DeferredDirSyncs;
use super::name::{collides, validate_topic_name};
use super::parallel;
use super::partition::Partition;
use super::space::{SpaceProbe, Statvfs, preallocated_bytes};
use crate::log::{Disk, LogConfig, LogOptions};
use crate::storage::files::write_atomically;

mod error;
mod file;
mod placed;
mod topic;

pub use error::CatalogError;
use error::io_err;
use file::{CATALOG_FILE, partition_dir, read_catalog, remove_orphans};
pub use topic::Topic;

/// Kafka's limit on partitions per topic is far higher; this keeps one request from creating
/// millions of preallocated segments.
pub const MAX_PARTITIONS: u32 = 10_000;

/// A topic's config overrides by Kafka name.
pub type Overrides = BTreeMap<String, String>;

/// A topic about to be made, checked by the caller.
struct NewTopic<'a> {
    name: &'a str,
    /// The cluster's id for it; `None` for a topic created by this broker on its own.
    id: Option<uuid::Uuid>,
    /// Its partitions, cluster-wide: 1 to [`MAX_PARTITIONS`].
    count: u32,
    /// The partitions made here: ascending, each below `count`.
    local: &'a [u32],
    /// Checked and normalised.
    overrides: Overrides,
}

/// The topics of one broker.
#[derive(Debug)]
pub struct TopicCatalog {
    data_dir: PathBuf,
    log_options: LogOptions,
    topics: RwLock<BTreeMap<String, Arc<Topic>>>,
    /// Serialises create and delete, so the file always matches the map.
    changes: Mutex<()>,
    /// Free space of the data directory's filesystem, checked before a create allocates.
    space: Arc<dyn SpaceProbe>,
    /// The dynamic broker configs beneath every topic's overrides.
    broker_configs: Arc<BrokerConfigStore>,
}

/// How the catalog opens and checks, beside the logs' own options.
#[derive(Debug, Clone)]
pub struct CatalogOptions {
    /// Free space of the data directory's filesystem ([`Statvfs`] but in tests).
    pub space: Arc<dyn SpaceProbe>,
    /// Threads opening (and, after a crash, recovering) partition logs at start-up (Kafka's
    /// `num.recovery.threads.per.data.dir`); at least 1.
    pub open_threads: usize,
    /// The dynamic broker configs (`<data-dir>/broker-configs`, opened by the broker);
    /// `None` keeps them in memory, starting empty.
    pub broker_configs: Option<Arc<BrokerConfigStore>>,
}

impl Default for CatalogOptions {
    /// The real free space, and 4 opening threads per CPU (between 4 and 32).
    fn default() -> Self {
        Self {
            space: Arc::new(Statvfs),
            open_threads: parallel::default_threads(),
            broker_configs: None,
        }
    }
}

/// Opens (recovering if needed) the partition in `dir`: its log and producer table.
fn open_partition(dir: &Path, options: &LogOptions) -> Result<Arc<Partition>, CatalogError> {
    Ok(Arc::new(Partition::open(dir, options)?))
}

impl TopicCatalog {
    /// Opens the catalog in `data_dir` (creating it if needed) and every partition log it
    /// names, several at a time.
    pub fn open(data_dir: impl AsRef<Path>, log_options: LogOptions) -> Result<Self, CatalogError> {
        Self::open_with(data_dir, log_options, CatalogOptions::default())
    }

    /// [`Self::open`] with the number of opening threads and the free-space figure given.
    pub fn open_with(
        data_dir: impl AsRef<Path>,
        log_options: LogOptions,
        options: CatalogOptions,
    ) -> Result<Self, CatalogError> {
        let CatalogOptions {
            space,
            open_threads,
            broker_configs,
        } = options;
        let broker_configs = broker_configs
            .unwrap_or_else(|| Arc::new(BrokerConfigStore::in_memory(CleanerSettings::default())));
        let data_dir = data_dir.as_ref().to_path_buf();
        std::fs::create_dir_all(&data_dir).map_err(io_err("create data directory", &data_dir))?;
        let entries = read_catalog(&data_dir)?;
        let snapshot = ConfigSnapshot {
            static_log: log_options.config.clone(),
            brokers: broker_configs.current(),
            static_cleaner: broker_configs.static_cleaner(),
        };
        // Each local partition opens with its topic's settings.
        let dirs: Vec<(PathBuf, LogConfig)> = entries
            .iter()
            .flat_map(|entry| {
                let config = snapshot.layers().log_config(&entry.overrides);
                let data_dir = &data_dir;
                entry
                    .local_indexes()
                    .into_iter()
                    .map(move |p| (partition_dir(data_dir, &entry.name, p), config.clone()))
            })
            .collect();
        // The logs' directory syncs wait until all are open, then go together (see
        // deferred_sync for why that is safe).
        let deferred = Arc::new(DeferredDirSyncs::new(Arc::clone(&log_options.disk)));
        let opening_options = LogOptions {
            disk: Arc::clone(&deferred) as Arc<dyn Disk>,
            ..log_options.clone()
        };
        let threads = open_threads.max(1);
        let opened = parallel::try_map(&dirs, threads, |(dir, config)| {
            let options = LogOptions {
                config: config.clone(),
                ..opening_options.clone()
            };
            open_partition(dir, &options)
        });
        // Even after a failure: what the opened logs changed is made durable either way.
        let synced = deferred
            .finish(threads)
            .map_err(|(dir, source)| CatalogError::Io {
                op: "sync partition directory",
                path: dir,
                source,
            });
        let mut opened = opened?.into_iter();
        synced?;
        let mut topics = BTreeMap::new();
        for entry in entries {
            // The logs come back in the order of `dirs`: this entry's local ones, ascending.
            let mut slots = vec![None; entry.count as usize];
            for p in entry.local_indexes() {
                slots[p as usize] = opened.next();
            }
            let topic = Topic::new(
                entry.name.clone(),
                entry.id,
                slots,
                Arc::new(entry.overrides),
            );
            topics.insert(entry.name, Arc::new(topic));
        }
        remove_orphans(&data_dir, &topics)?;
        Ok(Self {
            data_dir,
            log_options,
            topics: RwLock::new(topics),
            changes: Mutex::new(()),
            space,
            broker_configs,
        })
    }

    /// The layers beneath topic overrides now: the broker's flags and dynamic configs.
    pub fn config_snapshot(&self) -> ConfigSnapshot {
        ConfigSnapshot {
            static_log: self.log_options.config.clone(),
            brokers: self.broker_configs.current(),
            static_cleaner: self.broker_configs.static_cleaner(),
        }
    }

    /// The dynamic broker configs (and the cleaner's settings in force).
    pub fn broker_configs(&self) -> &Arc<BrokerConfigStore> {
        &self.broker_configs
    }

    /// The settings a topic with `overrides` runs with now.
    fn log_options_for(&self, overrides: &Overrides) -> LogOptions {
        LogOptions {
            config: self.config_snapshot().layers().log_config(overrides),
            ..self.log_options.clone()
        }
    }

    /// Every topic config of topic `name` with its value in force and where it comes from.
    pub fn topic_configs(&self, name: &str) -> Option<Vec<ResolvedConfig>> {
        let topic = self.get(name)?;
        Some(self.config_snapshot().layers().topic(&topic.overrides()))
    }

    /// Changes topic `name`'s overrides to what `change` makes of the current ones (checked
    /// against the topic config table), writes the catalog, then applies the new settings
    /// to every partition at once. With `validate_only` nothing is written or applied.
    /// Returns the new overrides.
    ///
    /// # Errors
    /// An unknown topic, the change refused (INVALID_CONFIG), or the catalog not written (the
    /// topic keeps its old overrides).
    pub fn alter_topic_configs(
        &self,
        name: &str,
        change: impl FnOnce(&dyn Scope, &Overrides) -> Result<Overrides, InvalidConfig>,
        validate_only: bool,
    ) -> Result<Arc<Overrides>, CatalogError> {
        let _one_change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = self
            .get(name)
            .ok_or_else(|| CatalogError::UnknownTopic(name.to_owned()))?;
        let snapshot = self.config_snapshot();
        let old = topic.overrides();
        let new = Arc::new(change(&TopicScope(&snapshot), &old)?);
        if validate_only {
            return Ok(new);
        }
        topic.set_overrides(Arc::clone(&new));
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        if let Err(err) = self.persist(&topics) {
            topic.set_overrides(old);
            return Err(err);
        }
        drop(topics);
        topic.apply(&snapshot.layers().log_config(&new));
        tracing::info!(topic = name, overrides = ?new, "topic configs changed");
        Ok(new)
    }

    /// Changes the dynamic broker configs of `scope` to what `change` makes of the current
    /// ones, writes them, then applies the result at once to every topic (those with their
    /// own override keep it). With `validate_only` nothing is written or applied.
    ///
    /// # Errors
    /// The change refused (INVALID_CONFIG) or the file not written (nothing changes).
    pub fn alter_broker_configs(
        &self,
        scope: BrokerScope,
        change: impl FnOnce(&ConfigSnapshot, &Overrides) -> Result<Overrides, InvalidConfig>,
        validate_only: bool,
    ) -> Result<Overrides, CatalogError> {
        let _one_change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let snapshot = self.config_snapshot();
        let new = change(&snapshot, snapshot.brokers.scope(scope))?;
        if validate_only {
            return Ok(new);
        }
        self.broker_configs.replace(scope, new.clone())?;
        let snapshot = self.config_snapshot();
        for topic in self.list() {
            topic.apply(&snapshot.layers().log_config(&topic.overrides()));
        }
        tracing::info!(?scope, configs = ?new, "broker configs changed");
        Ok(new)
    }

    /// The topic called `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(name)
            .cloned()
    }

    /// Every topic, sorted by name.
    pub fn list(&self) -> Vec<Arc<Topic>> {
        self.topics
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .values()
            .cloned()
            .collect()
    }

    /// Creates a topic with `partitions` partitions. On failure nothing of it is left: the
    /// partitions already made are removed and the catalog does not name it.
    pub fn create(&self, name: &str, partitions: i64) -> Result<Arc<Topic>, CatalogError> {
        self.create_with(name, partitions, &[])
    }

    /// [`Self::create`] with config overrides (CreateTopics' `configs`), checked first: a
    /// refused one creates nothing.
    pub fn create_with(
        &self,
        name: &str,
        partitions: i64,
        configs: &[(String, Option<String>)],
    ) -> Result<Arc<Topic>, CatalogError> {
        let _one_change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (count, overrides) = self.check_create_with(name, partitions, configs)?;
        self.create_locked(NewTopic {
            name,
            id: None,
            count,
            local: &(0..count).collect::<Vec<_>>(),
            overrides,
        })
    }

    /// Makes `new`'s local partitions, then writes the catalog with the topic; on failure
    /// nothing of it is left. The caller holds `changes` and has checked `new`.
    fn create_locked(&self, new: NewTopic<'_>) -> Result<Arc<Topic>, CatalogError> {
        let NewTopic {
            name,
            id,
            count,
            local,
            overrides,
        } = new;
        let options = self.log_options_for(&overrides);
        let overrides = Arc::new(overrides);
        // Every directory this create may have made, for the rollback.
        let mut made = Vec::with_capacity(local.len());
        let mut catalog_written = false;
        let created = (|| {
            let mut slots = vec![None; count as usize];
            for &p in local {
                let dir = partition_dir(&self.data_dir, name, p);
                // Left over from a create or delete that crashed halfway: not this topic's data.
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(io_err("remove stale partition directory", &dir))?;
                }
                made.push(dir.clone());
                slots[p as usize] = Some(open_partition(&dir, &options)?);
            }
            let topic = Arc::new(Topic::new(name.to_owned(), id, slots, overrides));
            let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
            topics.insert(name.to_owned(), Arc::clone(&topic));
            // A failed write may still have replaced the file (the rename done, its sync not).
            catalog_written = true;
            if let Err(err) = self.persist(&topics) {
                topics.remove(name);
                return Err(err);
            }
            Ok(topic)
        })();
        match created {
            Ok(topic) => {
                tracing::info!(
                    topic = name,
                    partitions = count,
                    local = local.len(),
                    "created topic"
                );
                Ok(topic)
            }
            Err(err) => {
                // The logs opened so far were dropped with the closure: their maps and files
                // are closed, so removing the directories gives the space back now.
                self.roll_back_create(name, &made, catalog_written, &err);
                Err(err)
            }
        }
    }

    /// Undoes a create that failed after making `made`: removes those directories, rewrites
    /// the catalog without the topic if it may have been written with it, and syncs the data
    /// directory so the removal is durable. Failures here are logged: the create's own error is
    /// what the client hears, and start-up removes any directory no topic names.
    fn roll_back_create(
        &self,
        name: &str,
        made: &[PathBuf],
        catalog_written: bool,
        cause: &CatalogError,
    ) {
        tracing::warn!(topic = name, partitions_made = made.len(), error = %cause, "creating a topic failed; removing what it made");
        for dir in made {
            match std::fs::remove_dir_all(dir) {
                Ok(()) => {}
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
                Err(err) => {
                    tracing::error!(dir = %dir.display(), error = %err, "cannot remove a partition directory of a failed create");
                }
            }
        }
        if catalog_written {
            let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
            if let Err(err) = self.persist(&topics) {
                tracing::error!(topic = name, error = %err, "cannot rewrite the topic catalog after a failed create");
            }
        }
        if let Err(err) = self.log_options.disk.sync_dir(&self.data_dir) {
            tracing::error!(dir = %self.data_dir.display(), error = %err, "cannot sync the data directory after a failed create");
        }
    }

    /// Whether [`Self::create`] would succeed now (CreateTopics' `validate_only`); returns the
    /// partition count.
    pub fn check_create(&self, name: &str, partitions: i64) -> Result<u32, CatalogError> {
        self.check_create_with(name, partitions, &[])
            .map(|(count, _)| count)
    }

    /// [`Self::check_create`] with config overrides; returns the partition count and the
    /// overrides checked and normalised.
    pub fn check_create_with(
        &self,
        name: &str,
        partitions: i64,
        configs: &[(String, Option<String>)],
    ) -> Result<(u32, Overrides), CatalogError> {
        validate_topic_name(name)
            .map_err(|reason| CatalogError::InvalidName(name.to_owned(), reason))?;
        let count = u32::try_from(partitions)
            .ok()
            .filter(|&n| (1..=MAX_PARTITIONS).contains(&n))
            .ok_or(CatalogError::InvalidPartitions(partitions))?;
        self.check_name_free(name)?;
        let snapshot = self.config_snapshot();
        let overrides = super::config::alter::replace_all(&TopicScope(&snapshot), configs)?;
        self.check_space(name, count, &snapshot.layers().log_config(&overrides))?;
        Ok((count, overrides))
    }

    /// Refuses a name taken by a topic, or one that collides with a topic's.
    fn check_name_free(&self, name: &str) -> Result<(), CatalogError> {
        let topics = self.topics.read().unwrap_or_else(PoisonError::into_inner);
        if topics.contains_key(name) {
            return Err(CatalogError::AlreadyExists(name.to_owned()));
        }
        if let Some(other) = topics.keys().find(|other| collides(name, other)) {
            return Err(CatalogError::Collides(name.to_owned(), other.clone()));
        }
        Ok(())
    }

    /// Refuses a create whose partitions' preallocation (with `config`'s segment size) does
    /// not fit in the free space.
    fn check_space(
        &self,
        name: &str,
        partitions: u32,
        config: &LogConfig,
    ) -> Result<(), CatalogError> {
        let per_partition_bytes = preallocated_bytes(config);
        let needed_bytes = per_partition_bytes.saturating_mul(u64::from(partitions));
        let available_bytes = self
            .space
            .available_bytes(&self.data_dir)
            .map_err(io_err("read free space of", &self.data_dir))?;
        if needed_bytes > available_bytes {
            return Err(CatalogError::NoSpace {
                topic: name.to_owned(),
                partitions,
                per_partition_bytes,
                needed_bytes,
                available_bytes,
                dir: self.data_dir.clone(),
            });
        }
        Ok(())
    }

    /// Grows topic `name` to `total` partitions (CreatePartitions), returning how many were
    /// added; every new partition is local (a cluster places them with
    /// [`Self::add_partitions_placed`]). On failure the topic keeps its old partitions and
    /// nothing of the new ones is left, as with [`Self::create`].
    pub fn add_partitions(&self, name: &str, total: i64) -> Result<u32, CatalogError> {
        let _one_change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let (old, added) = self.check_add_partitions_locked(name, total)?;
        let current = old.count();
        let local_new: Vec<u32> = (current..current + added).collect();
        self.grow_locked(&old, current + added, &local_new)?;
        Ok(added)
    }

    /// Replaces topic `old` by one of `total` partitions, making the new partitions
    /// `local_new` here first and writing the catalog last. On failure the topic keeps its
    /// old partitions and nothing of the new ones is left, as with [`Self::create`]. The
    /// caller holds `changes` and has checked `total` (above the current count, at most
    /// [`MAX_PARTITIONS`]) and `local_new` (each new, below `total`, ascending).
    fn grow_locked(
        &self,
        old: &Arc<Topic>,
        total: u32,
        local_new: &[u32],
    ) -> Result<(), CatalogError> {
        let name = old.name();
        let mut made = Vec::with_capacity(local_new.len());
        let mut catalog_written = false;
        let overrides = old.overrides();
        let options = self.log_options_for(&overrides);
        let grown = (|| {
            let mut slots = old.slots().to_vec();
            slots.resize(total as usize, None);
            for &p in local_new {
                let dir = partition_dir(&self.data_dir, name, p);
                // Left over from an add that crashed before the catalog named it.
                if dir.exists() {
                    std::fs::remove_dir_all(&dir)
                        .map_err(io_err("remove stale partition directory", &dir))?;
                }
                made.push(dir.clone());
                slots[p as usize] = Some(open_partition(&dir, &options)?);
            }
            let topic = Arc::new(Topic::new(name.to_owned(), old.id(), slots, overrides));
            let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
            topics.insert(name.to_owned(), topic);
            catalog_written = true;
            if let Err(err) = self.persist(&topics) {
                topics.insert(name.to_owned(), Arc::clone(old));
                return Err(err);
            }
            Ok(())
        })();
        match grown {
            Ok(()) => {
                tracing::info!(
                    topic = name,
                    total,
                    local_added = local_new.len(),
                    "added partitions"
                );
                Ok(())
            }
            Err(err) => {
                // The topic in the map is the old one again: the rollback rewrites its count.
                self.roll_back_create(name, &made, catalog_written, &err);
                Err(err)
            }
        }
    }

    /// Whether [`Self::add_partitions`] would succeed now (CreatePartitions' `validate_only`);
    /// returns how many partitions it would add.
    pub fn check_add_partitions(&self, name: &str, total: i64) -> Result<u32, CatalogError> {
        self.check_add_partitions_locked(name, total)
            .map(|(_, added)| added)
    }

    fn check_add_partitions_locked(
        &self,
        name: &str,
        total: i64,
    ) -> Result<(Arc<Topic>, u32), CatalogError> {
        let topic = self
            .get(name)
            .ok_or_else(|| CatalogError::UnknownTopic(name.to_owned()))?;
        let current = topic.count();
        if total <= i64::from(current) {
            return Err(CatalogError::NotMorePartitions {
                topic: name.to_owned(),
                current,
                requested: total,
            });
        }
        let total = u32::try_from(total)
            .ok()
            .filter(|&n| n <= MAX_PARTITIONS)
            .ok_or(CatalogError::InvalidPartitions(total))?;
        let added = total - current;
        let config = self.log_options_for(&topic.overrides()).config;
        self.check_space(name, added, &config)?;
        Ok((topic, added))
    }

    /// Deletes a topic and its data.
    pub fn delete(&self, name: &str) -> Result<(), CatalogError> {
        let _one_change = self.changes.lock().unwrap_or_else(PoisonError::into_inner);
        let topic = {
            let mut topics = self.topics.write().unwrap_or_else(PoisonError::into_inner);
            let topic = topics
                .remove(name)
                .ok_or_else(|| CatalogError::UnknownTopic(name.to_owned()))?;
            if let Err(err) = self.persist(&topics) {
                topics.insert(name.to_owned(), topic);
                return Err(err);
            }
            topic
        };
        for (p, partition) in topic.local_partitions() {
            let log = partition.log();
            if let Err(err) = log.close() {
                tracing::warn!(topic = name, partition = p, error = %err, "closing a deleted partition failed");
            }
            let dir = log.dir();
            std::fs::remove_dir_all(dir).map_err(io_err("remove partition directory", dir))?;
        }
        tracing::info!(topic = name, "deleted topic");
        Ok(())
    }

    /// Closes every partition log cleanly (sync, clean-shutdown marker).
    pub fn close(&self) -> Result<(), CatalogError> {
        let mut first_error = None;
        for topic in self.list() {
            topic.snapshot_producers();
            for log in topic.local_partitions().map(|(_, p)| p.log()) {
                if let Err(err) = log.close() {
                    tracing::error!(dir = %log.dir().display(), error = %err, "closing a partition failed");
                    first_error.get_or_insert(err);
                }
            }
        }
        first_error.map_or(Ok(()), |e| Err(CatalogError::Log(e)))
    }

    fn persist(&self, topics: &BTreeMap<String, Arc<Topic>>) -> Result<(), CatalogError> {
        let text = file::catalog_text(topics);
        write_atomically(
            &self.data_dir,
            CATALOG_FILE,
            text.as_bytes(),
            self.log_options.disk.as_ref(),
        )
        .map_err(io_err(
            "write topic catalog",
            &self.data_dir.join(CATALOG_FILE),
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{Flusher, LogConfig};

    fn options() -> LogOptions {
        LogOptions::new(
            LogConfig {
                segment_bytes: 64 * 1024,
                ..LogConfig::default()
            },
            Flusher::new(1),
        )
    }

    #[test]
    fn create_list_delete_and_survive_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        catalog.create("orders", 3).unwrap();
        catalog.create("a.b", 1).unwrap();
        assert!(matches!(
            catalog.create("orders", 1),
            Err(CatalogError::AlreadyExists(_))
        ));
        assert!(matches!(
            catalog.create("a_b", 1),
            Err(CatalogError::Collides(..))
        ));
        assert!(matches!(
            catalog.create("bad name", 1),
            Err(CatalogError::InvalidName(..))
        ));
        assert!(matches!(
            catalog.create("zero", 0),
            Err(CatalogError::InvalidPartitions(0))
        ));
        assert_eq!(
            catalog
                .list()
                .iter()
                .map(|t| t.name().to_owned())
                .collect::<Vec<_>>(),
            vec!["a.b", "orders"]
        );
        catalog.close().unwrap();
        drop(catalog);

        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert_eq!(catalog.get("orders").unwrap().partition_count(), 3);
        catalog.delete("orders").unwrap();
        assert!(catalog.get("orders").is_none());
        assert!(!dir.path().join("orders-0").exists());
        assert!(matches!(
            catalog.delete("orders"),
            Err(CatalogError::UnknownTopic(_))
        ));
        drop(catalog);
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert_eq!(catalog.list().len(), 1);
    }

    #[test]
    fn orphan_directories_are_removed_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("ghost-0")).unwrap();
        std::fs::write(
            dir.path().join("ghost-0").join("00000000000000000000.log"),
            b"old",
        )
        .unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert!(!dir.path().join("ghost-0").exists());
        catalog.create("ghost", 1).unwrap();
        drop(catalog);
        let path = dir.path().join(CATALOG_FILE);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text = text.replace("ghost 1", "ghost 2");
        std::fs::write(&path, text).unwrap();
        assert!(matches!(
            TopicCatalog::open(dir.path(), options()),
            Err(CatalogError::Damaged { .. })
        ));
    }

    #[test]
    fn overrides_are_written_with_the_topic_applied_live_and_old_files_read() {
        let dir = tempfile::tempdir().unwrap();
        // A catalog as written before per-topic configs existed.
        let old = "topic plain 1\n";
        let crc = crc32fast::hash(old.as_bytes());
        std::fs::write(
            dir.path().join(CATALOG_FILE),
            format!("{old}crc32 {crc:08x}\n"),
        )
        .unwrap();
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        assert!(catalog.get("plain").unwrap().overrides().is_empty());
        let configs = [
            ("retention.ms".to_owned(), Some("1000".to_owned())),
            (
                "cleanup.policy".to_owned(),
                Some("compact, delete".to_owned()),
            ),
        ];
        let topic = catalog.create_with("tuned", 2, &configs).unwrap();
        let log = Arc::clone(topic.log(1).unwrap());
        assert_eq!(log.config().retention_ms, Some(1000));
        assert!(log.config().cleanup_policy.compact);
        assert!(matches!(
            catalog.create_with(
                "refused",
                1,
                &[("retention.ms".to_owned(), Some("-5".to_owned()))]
            ),
            Err(CatalogError::InvalidConfig(_))
        ));
        assert!(catalog.get("refused").is_none());
        catalog
            .alter_topic_configs(
                "tuned",
                |_, current| {
                    let mut next = current.clone();
                    next.insert("retention.ms".to_owned(), "2000".to_owned());
                    Ok(next)
                },
                false,
            )
            .unwrap();
        assert_eq!(log.config().retention_ms, Some(2000), "applied live");
        catalog.close().unwrap();
        drop((catalog, topic, log));
        // The file without overrides for `plain` is as before.
        let text = std::fs::read_to_string(dir.path().join(CATALOG_FILE)).unwrap();
        assert!(text.starts_with("topic plain 1\ntopic tuned 2\nconfig cleanup.policy compact,delete\nconfig retention.ms 2000\ncrc32 "), "{text}");
        let catalog = TopicCatalog::open(dir.path(), options()).unwrap();
        let tuned = catalog.get("tuned").unwrap();
        assert_eq!(tuned.overrides()["retention.ms"], "2000");
        assert_eq!(tuned.log(0).unwrap().config().retention_ms, Some(2000));
    }
}
