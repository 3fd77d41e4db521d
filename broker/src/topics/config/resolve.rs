//! Resolution: the value in force for each config, where it comes from, and the
//! [`LogConfig`] a topic's partitions run with.
//!
//! Layers, first set wins (Kafka's order): the topic's override (DYNAMIC_TOPIC_CONFIG), this
//! broker's dynamic setting (DYNAMIC_BROKER_CONFIG), the cluster-wide dynamic default
//! (DYNAMIC_DEFAULT_BROKER_CONFIG), the broker's flag (STATIC_BROKER_CONFIG), Kafka's default
//! (DEFAULT_CONFIG). Pure: the layers are passed in.

use std::collections::BTreeMap;

use super::broker_level::{BrokerScope, CLEANER_CONFIGS, CleanerSettings, DynamicBrokerConfigs};
use super::defs::{TOPIC_CONFIGS, TopicConfigDef};
use super::value::Kind;
use crate::log::LogConfig;

/// Where a value comes from: Kafka's `ConfigSource` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(i8)]
pub enum ConfigSource {
    /// A topic's own override.
    DynamicTopic = 1,
    /// This broker's dynamic setting.
    DynamicBroker = 2,
    /// The cluster-wide dynamic default.
    DynamicDefaultBroker = 3,
    /// A broker flag.
    StaticBroker = 4,
    /// Kafka's default.
    Default = 5,
}

/// One layer that sets a config, under the name it has there.
#[derive(Debug, Clone, PartialEq)]
pub struct Synonym {
    /// The name in that layer (`retention.ms` for a topic override, `log.retention.ms` for
    /// a broker setting).
    pub name: &'static str,
    /// Its value there.
    pub value: String,
    /// The layer.
    pub source: ConfigSource,
}

/// A config with the value in force and every layer that sets it, first the one in force.
#[derive(Debug, Clone, PartialEq)]
pub struct ResolvedConfig {
    /// The name asked about.
    pub name: &'static str,
    /// The value in force.
    pub value: String,
    /// Where it comes from.
    pub source: ConfigSource,
    /// Every layer that sets it, the one in force first.
    pub synonyms: Vec<Synonym>,
    /// Type and range.
    pub kind: Kind,
    /// Documentation.
    pub doc: &'static str,
    /// Whether it can be changed while the broker runs.
    pub read_only: bool,
}

impl ResolvedConfig {
    fn from_synonyms(
        name: &'static str,
        synonyms: Vec<Synonym>,
        kind: Kind,
        doc: &'static str,
        read_only: bool,
    ) -> Self {
        let (value, source) = synonyms
            .first()
            .map_or((String::new(), ConfigSource::Default), |s| {
                (s.value.clone(), s.source)
            });
        Self {
            name,
            value,
            source,
            synonyms,
            kind,
            doc,
            read_only,
        }
    }
}

/// The layers below a topic's overrides.
#[derive(Debug, Clone, Copy)]
pub struct Layers<'a> {
    /// The broker's flags as log settings (and Kafka's defaults where no flag exists).
    pub static_log: &'a LogConfig,
    /// The dynamic broker configs.
    pub brokers: &'a DynamicBrokerConfigs,
    /// The cleaner's settings from the flags.
    pub static_cleaner: CleanerSettings,
}

impl Layers<'_> {
    /// The static layer of a topic config: its flag's value, or Kafka's default.
    fn static_synonym(&self, def: &'static TopicConfigDef) -> Synonym {
        Synonym {
            name: def.broker_name.unwrap_or(def.name),
            value: (def.base)(self.static_log),
            source: if def.flag.is_some() {
                ConfigSource::StaticBroker
            } else {
                ConfigSource::Default
            },
        }
    }

    /// The broker-level layers of a topic config, this broker's first.
    fn broker_synonyms(&self, def: &'static TopicConfigDef, out: &mut Vec<Synonym>) {
        if let Some(broker_name) = def.broker_name.filter(|_| def.broker_dynamic) {
            for (scope, source) in [
                (BrokerScope::ThisBroker, ConfigSource::DynamicBroker),
                (
                    BrokerScope::ClusterDefault,
                    ConfigSource::DynamicDefaultBroker,
                ),
            ] {
                if let Some(value) = self.brokers.scope(scope).get(broker_name) {
                    out.push(Synonym {
                        name: broker_name,
                        value: value.clone(),
                        source,
                    });
                }
            }
        }
        out.push(self.static_synonym(def));
    }

    /// Every topic config of a topic with `overrides`, sorted by name.
    pub fn topic(&self, overrides: &BTreeMap<String, String>) -> Vec<ResolvedConfig> {
        TOPIC_CONFIGS
            .iter()
            .map(|def| {
                let mut synonyms = Vec::with_capacity(4);
                if let Some(value) = overrides.get(def.name) {
                    synonyms.push(Synonym {
                        name: def.name,
                        value: value.clone(),
                        source: ConfigSource::DynamicTopic,
                    });
                }
                self.broker_synonyms(def, &mut synonyms);
                ResolvedConfig::from_synonyms(def.name, synonyms, def.kind, def.doc, false)
            })
            .collect()
    }

    /// The value in force of topic config `name` for a topic with `overrides`.
    pub fn topic_value(&self, overrides: &BTreeMap<String, String>, name: &str) -> Option<String> {
        let def = super::defs::topic_config(name)?;
        if let Some(value) = overrides.get(name) {
            return Some(value.clone());
        }
        let mut synonyms = Vec::new();
        self.broker_synonyms(def, &mut synonyms);
        synonyms.into_iter().next().map(|s| s.value)
    }

    /// Every broker-level config with a topic synonym or of the cleaner, as the broker
    /// resource of `scope` reports them: for this broker, every one with its value in force;
    /// for the cluster default, only those set there.
    pub fn broker(&self, scope: BrokerScope) -> Vec<ResolvedConfig> {
        let mut configs = Vec::new();
        for def in TOPIC_CONFIGS {
            let Some(broker_name) = def.broker_name else {
                continue;
            };
            let mut synonyms = Vec::with_capacity(3);
            self.broker_synonyms(def, &mut synonyms);
            configs.push(ResolvedConfig::from_synonyms(
                broker_name,
                synonyms,
                def.kind,
                def.doc,
                !def.broker_dynamic,
            ));
        }
        let kafka_defaults = CleanerSettings::default();
        for def in CLEANER_CONFIGS {
            let mut synonyms = Vec::with_capacity(3);
            for (layer, source) in [
                (BrokerScope::ThisBroker, ConfigSource::DynamicBroker),
                (
                    BrokerScope::ClusterDefault,
                    ConfigSource::DynamicDefaultBroker,
                ),
            ] {
                if let Some(value) = self.brokers.scope(layer).get(def.name) {
                    synonyms.push(Synonym {
                        name: def.name,
                        value: value.clone(),
                        source,
                    });
                }
            }
            let value = (def.base)(&self.static_cleaner);
            // A flag set to something other than Kafka's default is a static setting.
            let source = if value == (def.base)(&kafka_defaults) {
                ConfigSource::Default
            } else {
                ConfigSource::StaticBroker
            };
            synonyms.push(Synonym {
                name: def.name,
                value,
                source,
            });
            configs.push(ResolvedConfig::from_synonyms(
                def.name, synonyms, def.kind, def.doc, false,
            ));
        }
        if scope == BrokerScope::ClusterDefault {
            configs.retain_mut(|c| {
                c.synonyms
                    .retain(|s| s.source == ConfigSource::DynamicDefaultBroker);
                match c.synonyms.first() {
                    Some(s) => {
                        c.value = s.value.clone();
                        c.source = s.source;
                        true
                    }
                    None => false,
                }
            });
        }
        configs.sort_by_key(|c| c.name);
        configs
    }

    /// The settings a topic with `overrides` runs with: `static_log` with every applied
    /// config's value in force written in. Flush and write path stay the broker's.
    pub fn log_config(&self, overrides: &BTreeMap<String, String>) -> LogConfig {
        let mut config = self.static_log.clone();
        let value_of = |def: &'static TopicConfigDef| {
            let text = self.topic_value(overrides, def.name)?;
            match def.kind.parse(def.name, &text) {
                Ok(value) => Some(value),
                Err(err) => {
                    // Values are checked before they are stored: only a bug gets here.
                    tracing::error!(error = %err, "ignoring a stored config value");
                    None
                }
            }
        };
        for def in TOPIC_CONFIGS {
            if let (Some(apply), Some(value)) = (def.apply, value_of(def)) {
                apply(&mut config, &value);
            }
        }
        // Kafka's KIP-937 compatibility: the deprecated difference fills the bounds left at
        // their default.
        if let Some(difference) = super::defs::topic_config("message.timestamp.difference.max.ms")
            .and_then(value_of)
            .and_then(|v| v.as_long())
        {
            let rules = &mut config.rules;
            if rules.timestamp_before_max_ms == i64::MAX {
                rules.timestamp_before_max_ms = difference;
            }
            if rules.timestamp_after_max_ms == i64::MAX {
                rules.timestamp_after_max_ms = difference;
            }
        }
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::log::{CleanupPolicy, TimestampType};

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    }

    #[test]
    fn layers_resolve_in_kafkas_order() {
        let static_log = LogConfig {
            retention_ms: Some(1000),
            ..LogConfig::default()
        };
        let brokers = DynamicBrokerConfigs {
            this_broker: map(&[("log.retention.ms", "2000")]),
            cluster_default: map(&[("log.retention.ms", "3000"), ("log.segment.bytes", "8192")]),
        };
        let layers = Layers {
            static_log: &static_log,
            brokers: &brokers,
            static_cleaner: CleanerSettings::default(),
        };
        let resolved = layers.topic(&map(&[("retention.ms", "4000")]));
        let retention = resolved.iter().find(|c| c.name == "retention.ms").unwrap();
        assert_eq!(retention.value, "4000");
        assert_eq!(retention.source, ConfigSource::DynamicTopic);
        let sources: Vec<_> = retention
            .synonyms
            .iter()
            .map(|s| (s.name, s.value.as_str(), s.source))
            .collect();
        assert_eq!(
            sources,
            [
                ("retention.ms", "4000", ConfigSource::DynamicTopic),
                ("log.retention.ms", "2000", ConfigSource::DynamicBroker),
                (
                    "log.retention.ms",
                    "3000",
                    ConfigSource::DynamicDefaultBroker
                ),
                ("log.retention.ms", "1000", ConfigSource::StaticBroker),
            ]
        );
        let segment = resolved.iter().find(|c| c.name == "segment.bytes").unwrap();
        assert_eq!(
            (segment.value.as_str(), segment.source),
            ("8192", ConfigSource::DynamicDefaultBroker)
        );
        let policy = resolved
            .iter()
            .find(|c| c.name == "cleanup.policy")
            .unwrap();
        assert_eq!(
            (policy.value.as_str(), policy.source),
            ("delete", ConfigSource::Default)
        );
        let config = layers.log_config(&map(&[("retention.ms", "4000")]));
        assert_eq!(config.retention_ms, Some(4000));
        assert_eq!(config.segment_bytes, 8192);
        let config = layers.log_config(&BTreeMap::new());
        assert_eq!(config.retention_ms, Some(2000));
    }

    #[test]
    fn every_applied_config_reaches_the_log_config() {
        let static_log = LogConfig::default();
        let brokers = DynamicBrokerConfigs::default();
        let layers = Layers {
            static_log: &static_log,
            brokers: &brokers,
            static_cleaner: CleanerSettings::default(),
        };
        let config = layers.log_config(&map(&[
            ("cleanup.policy", "delete,compact"),
            ("retention.ms", "-1"),
            ("retention.bytes", "1000000"),
            ("segment.bytes", "65536"),
            ("segment.ms", "60000"),
            ("index.interval.bytes", "100"),
            ("delete.retention.ms", "5"),
            ("min.compaction.lag.ms", "6"),
            ("max.compaction.lag.ms", "7"),
            ("min.cleanable.dirty.ratio", "0.25"),
            ("max.message.bytes", "2048"),
            ("message.timestamp.type", "LogAppendTime"),
            ("message.timestamp.before.max.ms", "8"),
            ("message.timestamp.difference.max.ms", "9"),
            ("min.insync.replicas", "2"),
        ]));
        assert_eq!(
            config.cleanup_policy,
            CleanupPolicy {
                delete: true,
                compact: true
            }
        );
        assert_eq!(config.retention_ms, None);
        assert_eq!(config.retention_bytes, Some(1_000_000));
        assert_eq!(config.segment_bytes, 65536);
        assert_eq!(config.segment_ms, 60000);
        assert_eq!(config.index_interval_bytes, 100);
        assert_eq!(config.compaction.delete_retention_ms, 5);
        assert_eq!(config.compaction.min_compaction_lag_ms, 6);
        assert_eq!(config.compaction.max_compaction_lag_ms, 7);
        assert!((config.compaction.min_cleanable_dirty_ratio - 0.25).abs() < f64::EPSILON);
        assert_eq!(config.rules.max_message_bytes, 2048);
        assert_eq!(config.rules.timestamp_type, TimestampType::LogAppendTime);
        // before set explicitly; after left at its default takes the deprecated difference.
        assert_eq!(config.rules.timestamp_before_max_ms, 8);
        assert_eq!(config.rules.timestamp_after_max_ms, 9);
        assert_eq!(config.rules.min_insync_replicas, 2);
        assert_eq!(config.flush, static_log.flush);
    }

    #[test]
    fn the_cluster_default_resource_lists_only_what_is_set_there() {
        let static_log = LogConfig::default();
        let brokers = DynamicBrokerConfigs {
            this_broker: map(&[("log.cleaner.threads", "2")]),
            cluster_default: map(&[("log.cleaner.threads", "3")]),
        };
        let layers = Layers {
            static_log: &static_log,
            brokers: &brokers,
            static_cleaner: CleanerSettings::default(),
        };
        let defaults = layers.broker(BrokerScope::ClusterDefault);
        assert_eq!(defaults.len(), 1);
        assert_eq!(defaults[0].value, "3");
        let this = layers.broker(BrokerScope::ThisBroker);
        let threads = this
            .iter()
            .find(|c| c.name == "log.cleaner.threads")
            .unwrap();
        assert_eq!(
            (
                threads.value.as_str(),
                threads.source,
                threads.synonyms.len()
            ),
            ("2", ConfigSource::DynamicBroker, 3)
        );
        let flush = this
            .iter()
            .find(|c| c.name == "log.flush.interval.ms")
            .unwrap();
        assert!(flush.read_only);
    }
}
