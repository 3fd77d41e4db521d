//! Broker-level dynamic configs: the ones an operator may change while the broker runs
//! (DescribeConfigs / AlterConfigs / IncrementalAlterConfigs on the BROKER resource), kept in
//! `<data-dir>/broker-configs`, and the log cleaner's live settings ([`CleanerSettings`]).
//!
//! Two scopes, as in Kafka: settings for this broker (resource name "0") and cluster-wide
//! defaults (resource name "", `kafka-configs --entity-default`); this broker's own win. A
//! topic-level config with a broker synonym (`retention.ms` / `log.retention.ms`) takes its
//! value from these when the topic has no override of its own.
//!
//! The file is written like the topic catalog: whole, atomically (temporary file, sync,
//! rename, directory sync), with a CRC-32 of everything before the last line:
//!
//! ```text
//! broker <name> <value>     this broker's setting
//! default <name> <value>    cluster-wide default
//! crc32 <8 hex digits>
//! ```
//!
//! Invariants: every stored name is a dynamic broker config and every value parses under its
//! kind (checked before storing and again when read, so a damaged file stops start-up
//! instead of applying a wrong value); the in-memory maps change only after the file that
//! holds them is durable.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::defs::{TopicConfigDef, by_broker_name};
use super::value::{InvalidConfig, Kind, Value};
use crate::storage::Disk;
use crate::storage::files::write_atomically;

/// The file name in the data directory.
pub const BROKER_CONFIGS_FILE: &str = "broker-configs";

/// The log cleaner's settings in force: the broker's flags, replaced by dynamic broker configs
/// when set. Read by the cleaner at each pass ([`BrokerConfigStore::cleaner_settings`]).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CleanerSettings {
    /// How long the cleaner sleeps when it finds no log to clean (`log.cleaner.backoff.ms`).
    pub backoff_ms: u64,
    /// Cleaner threads (`log.cleaner.threads`).
    pub threads: usize,
    /// Most bytes per second the cleaner reads and writes, over all its threads
    /// (`log.cleaner.io.max.bytes.per.second`); `f64::MAX` is unlimited, Kafka's default.
    pub io_max_bytes_per_second: f64,
    /// Memory for the key-to-offset map, over all threads (`log.cleaner.dedupe.buffer.size`).
    pub dedupe_buffer_size: u64,
}

impl Default for CleanerSettings {
    /// Kafka's defaults. The broker's `--log-cleaner-*` flags set the static value.
    fn default() -> Self {
        Self {
            backoff_ms: 15_000,
            threads: 1,
            io_max_bytes_per_second: f64::MAX,
            dedupe_buffer_size: 128 << 20,
        }
    }
}

/// A broker-level config with no topic-level synonym (the cleaner's).
#[derive(Debug)]
pub struct BrokerOnlyDef {
    /// Kafka's name.
    pub name: &'static str,
    /// Type and accepted range.
    pub kind: Kind,
    /// Documentation.
    pub doc: &'static str,
    /// The broker flag that sets the static value.
    pub flag: &'static str,
    /// The static value.
    pub base: fn(&CleanerSettings) -> String,
    /// Writes a value into the settings.
    pub apply: fn(&mut CleanerSettings, &Value),
}

/// The cleaner's broker-level configs, sorted by name.
pub static CLEANER_CONFIGS: &[BrokerOnlyDef] = &[
    BrokerOnlyDef {
        name: "log.cleaner.backoff.ms",
        kind: Kind::Long {
            min: 0,
            max: i64::MAX,
        },
        doc: "How long the log cleaner sleeps when no log needs cleaning.",
        flag: "--log-cleaner-backoff-ms",
        base: |c| c.backoff_ms.to_string(),
        apply: |c, v| {
            if let Some(n) = v.as_long().and_then(|n| u64::try_from(n).ok()) {
                c.backoff_ms = n;
            }
        },
    },
    BrokerOnlyDef {
        name: "log.cleaner.dedupe.buffer.size",
        kind: Kind::Long {
            min: 1 << 20,
            max: i64::MAX,
        },
        doc: "Memory for the log cleaner's key-to-offset map, over all its threads; a log \
              with more keys than fit is cleaned in several passes.",
        flag: "--log-cleaner-dedupe-buffer-size",
        base: |c| c.dedupe_buffer_size.to_string(),
        apply: |c, v| {
            if let Some(n) = v.as_long().and_then(|n| u64::try_from(n).ok()) {
                c.dedupe_buffer_size = n;
            }
        },
    },
    BrokerOnlyDef {
        name: "log.cleaner.io.max.bytes.per.second",
        kind: Kind::Double {
            min: 0.0,
            max: f64::MAX,
        },
        doc: "Most bytes per second the log cleaner reads and writes, over all its threads.",
        flag: "--log-cleaner-io-max-bytes-per-second",
        base: |c| super::value::format_double(c.io_max_bytes_per_second),
        apply: |c, v| {
            if let Value::Double(x) = v {
                c.io_max_bytes_per_second = *x;
            }
        },
    },
    BrokerOnlyDef {
        name: "log.cleaner.threads",
        kind: Kind::Int { min: 0, max: 64 },
        doc: "Threads of the log cleaner; 0 stops cleaning.",
        flag: "--log-cleaner-threads",
        base: |c| c.threads.to_string(),
        apply: |c, v| {
            if let Some(n) = v.as_long().and_then(|n| usize::try_from(n).ok()) {
                c.threads = n;
            }
        },
    },
];

/// A dynamic broker config: one with a topic-level synonym, or one of the cleaner's.
#[derive(Debug, Clone, Copy)]
pub enum BrokerDef {
    /// The broker-level name of a topic config.
    Topic(&'static TopicConfigDef),
    /// A broker-only config.
    Only(&'static BrokerOnlyDef),
}

impl BrokerDef {
    /// The dynamic broker config called `name`; read-only synonyms (flush) are refused.
    ///
    /// # Errors
    /// [`InvalidConfig::Unknown`] or [`InvalidConfig::ReadOnly`].
    pub fn find(name: &str) -> Result<Self, InvalidConfig> {
        if let Some(def) = by_broker_name(name) {
            return if def.broker_dynamic {
                Ok(Self::Topic(def))
            } else {
                Err(InvalidConfig::ReadOnly {
                    name: name.to_owned(),
                })
            };
        }
        CLEANER_CONFIGS
            .iter()
            .find(|d| d.name == name)
            .map(Self::Only)
            .ok_or_else(|| InvalidConfig::Unknown {
                name: name.to_owned(),
                scope: "broker",
            })
    }

    /// Its kind.
    pub fn kind(self) -> Kind {
        match self {
            Self::Topic(d) => d.kind,
            Self::Only(d) => d.kind,
        }
    }

    /// Parses and checks `value` under the broker-level `name`.
    ///
    /// # Errors
    /// As [`Self::find`] and [`Kind::parse`].
    pub fn check(name: &str, value: &str) -> Result<Value, InvalidConfig> {
        Self::find(name)?.kind().parse(name, value)
    }
}

/// Which broker resource a change is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BrokerScope {
    /// This broker (resource name "0").
    ThisBroker,
    /// Every broker without its own value (resource name "").
    ClusterDefault,
}

/// The dynamic broker configs in force, by broker-level name.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct DynamicBrokerConfigs {
    /// This broker's.
    pub this_broker: BTreeMap<String, String>,
    /// The cluster-wide defaults.
    pub cluster_default: BTreeMap<String, String>,
}

impl DynamicBrokerConfigs {
    /// The map of `scope`.
    pub fn scope(&self, scope: BrokerScope) -> &BTreeMap<String, String> {
        match scope {
            BrokerScope::ThisBroker => &self.this_broker,
            BrokerScope::ClusterDefault => &self.cluster_default,
        }
    }
}

/// Why the broker-configs file could not be read or written.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BrokerConfigsError {
    /// Reading or writing the file failed.
    #[error("{op} {path}: {source}")]
    Io {
        /// What was being done.
        op: &'static str,
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The file is damaged or names a config this broker does not accept.
    #[error("broker configs file {path} is damaged: {reason}")]
    Damaged {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
}

/// The dynamic broker configs of one broker, persisted in its data directory.
#[derive(Debug)]
pub struct BrokerConfigStore {
    /// Where the file lives and how it is synced; `None` keeps the configs in memory only
    /// (catalogs opened without a broker, in unit tests).
    file: Option<(PathBuf, Arc<dyn Disk>)>,
    /// The cleaner's settings from the flags.
    static_cleaner: CleanerSettings,
    current: RwLock<Arc<DynamicBrokerConfigs>>,
}

impl BrokerConfigStore {
    /// Configs held in memory only, starting empty.
    pub fn in_memory(static_cleaner: CleanerSettings) -> Self {
        Self {
            file: None,
            static_cleaner,
            current: RwLock::new(Arc::default()),
        }
    }

    /// Reads `<data_dir>/broker-configs` (none yet: no dynamic configs).
    ///
    /// # Errors
    /// The file unreadable or damaged.
    pub fn open(
        data_dir: &Path,
        disk: Arc<dyn Disk>,
        static_cleaner: CleanerSettings,
    ) -> Result<Self, BrokerConfigsError> {
        let current = read(&data_dir.join(BROKER_CONFIGS_FILE))?;
        Ok(Self {
            file: Some((data_dir.to_path_buf(), disk)),
            static_cleaner,
            current: RwLock::new(Arc::new(current)),
        })
    }

    /// The configs in force.
    pub fn current(&self) -> Arc<DynamicBrokerConfigs> {
        Arc::clone(&self.current.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// The cleaner's settings from the flags alone.
    pub fn static_cleaner(&self) -> CleanerSettings {
        self.static_cleaner
    }

    /// The cleaner's settings in force: flags, then cluster defaults, then this broker's.
    pub fn cleaner_settings(&self) -> CleanerSettings {
        let current = self.current();
        let mut settings = self.static_cleaner;
        for def in CLEANER_CONFIGS {
            let text = current
                .this_broker
                .get(def.name)
                .or_else(|| current.cluster_default.get(def.name));
            if let Some(value) = text.and_then(|t| def.kind.parse(def.name, t).ok()) {
                (def.apply)(&mut settings, &value);
            }
        }
        settings
    }

    /// Replaces the configs of `scope` with `configs` (already checked by the caller with
    /// [`BrokerDef::check`]): the file first, then memory. Callers serialise changes.
    ///
    /// # Errors
    /// The file could not be written; memory is unchanged.
    pub fn replace(
        &self,
        scope: BrokerScope,
        configs: BTreeMap<String, String>,
    ) -> Result<(), BrokerConfigsError> {
        let mut next = DynamicBrokerConfigs::clone(&self.current());
        match scope {
            BrokerScope::ThisBroker => next.this_broker = configs,
            BrokerScope::ClusterDefault => next.cluster_default = configs,
        }
        if let Some((dir, disk)) = &self.file {
            write_atomically(dir, BROKER_CONFIGS_FILE, &encode(&next), disk.as_ref()).map_err(
                |source| BrokerConfigsError::Io {
                    op: "write",
                    path: dir.join(BROKER_CONFIGS_FILE),
                    source,
                },
            )?;
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(next);
        Ok(())
    }
}

fn encode(configs: &DynamicBrokerConfigs) -> Vec<u8> {
    let mut text = String::new();
    for (word, map) in [
        ("broker", &configs.this_broker),
        ("default", &configs.cluster_default),
    ] {
        for (name, value) in map {
            text.push_str(&format!("{word} {name} {value}\n"));
        }
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    text.into_bytes()
}

fn read(path: &Path) -> Result<DynamicBrokerConfigs, BrokerConfigsError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(DynamicBrokerConfigs::default());
        }
        Err(source) => {
            return Err(BrokerConfigsError::Io {
                op: "read",
                path: path.to_path_buf(),
                source,
            });
        }
    };
    let damaged = |reason: String| BrokerConfigsError::Damaged {
        path: path.to_path_buf(),
        reason,
    };
    let body = super::checked_body(&text).map_err(damaged)?;
    let mut configs = DynamicBrokerConfigs::default();
    for line in body.lines() {
        let mut words = line.split(' ');
        let (Some(scope), Some(name), Some(value), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(damaged(format!("unreadable line {line:?}")));
        };
        let map = match scope {
            "broker" => &mut configs.this_broker,
            "default" => &mut configs.cluster_default,
            _ => return Err(damaged(format!("unreadable line {line:?}"))),
        };
        BrokerDef::check(name, value).map_err(|e| damaged(e.to_string()))?;
        map.insert(name.to_owned(), value.to_owned());
    }
    Ok(configs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::OsDisk;

    #[test]
    fn configs_survive_reopening_and_damage_is_reported() {
        let dir = tempfile::tempdir().unwrap();
        let store =
            BrokerConfigStore::open(dir.path(), Arc::new(OsDisk), CleanerSettings::default())
                .unwrap();
        assert_eq!(store.cleaner_settings(), CleanerSettings::default());
        store
            .replace(
                BrokerScope::ClusterDefault,
                BTreeMap::from([("log.cleaner.threads".to_owned(), "3".to_owned())]),
            )
            .unwrap();
        store
            .replace(
                BrokerScope::ThisBroker,
                BTreeMap::from([
                    ("log.cleaner.threads".to_owned(), "2".to_owned()),
                    ("log.retention.ms".to_owned(), "1000".to_owned()),
                ]),
            )
            .unwrap();
        assert_eq!(store.cleaner_settings().threads, 2);
        drop(store);
        let store =
            BrokerConfigStore::open(dir.path(), Arc::new(OsDisk), CleanerSettings::default())
                .unwrap();
        assert_eq!(store.cleaner_settings().threads, 2);
        assert_eq!(
            store.current().cluster_default.get("log.cleaner.threads"),
            Some(&"3".to_owned())
        );
        let path = dir.path().join(BROKER_CONFIGS_FILE);
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, text.replace("1000", "1001")).unwrap();
        assert!(matches!(
            BrokerConfigStore::open(dir.path(), Arc::new(OsDisk), CleanerSettings::default()),
            Err(BrokerConfigsError::Damaged { .. })
        ));
    }

    #[test]
    fn only_dynamic_names_are_accepted() {
        assert!(BrokerDef::check("log.retention.ms", "5").is_ok());
        assert!(matches!(
            BrokerDef::check("log.flush.interval.ms", "5"),
            Err(InvalidConfig::ReadOnly { .. })
        ));
        assert!(matches!(
            BrokerDef::check("retention.ms", "5"),
            Err(InvalidConfig::Unknown { .. })
        ));
        assert!(matches!(
            BrokerDef::check("log.cleaner.threads", "-1"),
            Err(InvalidConfig::BadValue { .. })
        ));
    }
}
