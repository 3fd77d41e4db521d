//! Topic configuration: the configs a topic may override, their checking, where each value
//! in force comes from, and the broker-level dynamic configs beneath them.
//!
//! Owns the table of configs ([`defs`]: Kafka's names, types, ranges, documentation, broker
//! synonyms and the [`LogConfig`] field each sets), value parsing ([`value`]), resolution
//! through Kafka's layers ([`resolve`]), the changes AlterConfigs and IncrementalAlterConfigs
//! make ([`alter`]) and the persisted broker-level dynamic configs with the cleaner's settings
//! ([`broker_level`]). Does not store a topic's overrides (the catalog does, beside the topic)
//! and does not know the wire protocol.
//!
//! Invariant: every override stored anywhere has been parsed by its config's [`Kind`] and is
//! kept in its normalised text, so resolution never meets a value it cannot apply.

pub mod alter;
pub mod broker_level;
pub mod defs;
pub mod resolve;
pub mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

pub use alter::{ConfigOp, Scope};
pub use broker_level::{
    BROKER_CONFIGS_FILE, BrokerConfigStore, BrokerConfigsError, BrokerDef, BrokerScope,
    CleanerSettings, DynamicBrokerConfigs,
};
pub use defs::{TOPIC_CONFIGS, TopicConfigDef, topic_config};
pub use resolve::{ConfigSource, Layers, ResolvedConfig, Synonym};
pub use value::{ConfigType, InvalidConfig, Kind, Value};

use crate::log::LogConfig;

/// The layers beneath topic overrides at one moment: the broker's static settings and its
/// dynamic configs.
#[derive(Debug, Clone)]
pub struct ConfigSnapshot {
    /// The broker's flags as log settings.
    pub static_log: LogConfig,
    /// The dynamic broker configs.
    pub brokers: Arc<DynamicBrokerConfigs>,
    /// The cleaner's settings from the flags.
    pub static_cleaner: CleanerSettings,
}

impl ConfigSnapshot {
    /// Kafka's defaults everywhere, no dynamic configs.
    pub fn kafka_defaults() -> Self {
        Self {
            static_log: LogConfig::default(),
            brokers: Arc::default(),
            static_cleaner: CleanerSettings::default(),
        }
    }

    /// The layers, for resolution.
    pub fn layers(&self) -> Layers<'_> {
        Layers {
            static_log: &self.static_log,
            brokers: &self.brokers,
            static_cleaner: self.static_cleaner,
        }
    }
}

/// Topic overrides checked against the topic config table.
#[derive(Debug, Clone, Copy)]
pub struct TopicScope<'a>(pub &'a ConfigSnapshot);

impl Scope for TopicScope<'_> {
    fn kind(&self, name: &str) -> Result<Kind, InvalidConfig> {
        topic_config(name)
            .map(|d| d.kind)
            .ok_or_else(|| InvalidConfig::Unknown {
                name: name.to_owned(),
                scope: "topic",
            })
    }

    fn in_force(&self, name: &str) -> Option<String> {
        self.0.layers().topic_value(&BTreeMap::new(), name)
    }
}

/// Dynamic broker configs of one scope checked against the broker-level table.
#[derive(Debug, Clone, Copy)]
pub struct BrokerScopeOf<'a>(pub &'a ConfigSnapshot, pub BrokerScope);

impl Scope for BrokerScopeOf<'_> {
    fn kind(&self, name: &str) -> Result<Kind, InvalidConfig> {
        BrokerDef::find(name).map(BrokerDef::kind)
    }

    fn in_force(&self, name: &str) -> Option<String> {
        let resolved = self.0.layers().broker(BrokerScope::ThisBroker);
        let config = resolved.into_iter().find(|c| c.name == name)?;
        let below = config.synonyms.into_iter().filter(|s| match self.1 {
            BrokerScope::ThisBroker => s.source != ConfigSource::DynamicBroker,
            BrokerScope::ClusterDefault => !matches!(
                s.source,
                ConfigSource::DynamicBroker | ConfigSource::DynamicDefaultBroker
            ),
        });
        below.into_iter().next().map(|s| s.value)
    }
}

/// The body of a file ending in a `crc32 <hex>` line, if the CRC matches.
///
/// # Errors
/// What is wrong, for the caller's "damaged" error.
pub(crate) fn checked_body(text: &str) -> Result<&str, String> {
    let body_end = text
        .rfind("crc32 ")
        .ok_or_else(|| "no checksum line".to_owned())?;
    let (body, crc_line) = text.split_at(body_end);
    let stored = crc_line
        .trim_end()
        .strip_prefix("crc32 ")
        .and_then(|h| u32::from_str_radix(h, 16).ok());
    if stored != Some(crc32fast::hash(body.as_bytes())) {
        return Err("checksum mismatch".to_owned());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_appends_start_from_the_value_beneath() {
        let snapshot = ConfigSnapshot {
            brokers: Arc::new(DynamicBrokerConfigs {
                this_broker: BTreeMap::new(),
                cluster_default: BTreeMap::from([(
                    "log.cleanup.policy".to_owned(),
                    "compact".to_owned(),
                )]),
            }),
            ..ConfigSnapshot::kafka_defaults()
        };
        let append = [ConfigOp {
            name: "log.cleanup.policy".to_owned(),
            op: 2,
            value: Some("delete".to_owned()),
        }];
        // This broker's value starts from the cluster default; the default from the flag.
        let this = BrokerScopeOf(&snapshot, BrokerScope::ThisBroker);
        let next = alter::incremental(&this, &BTreeMap::new(), &append).unwrap();
        assert_eq!(next["log.cleanup.policy"], "compact,delete");
        let default = BrokerScopeOf(&snapshot, BrokerScope::ClusterDefault);
        let next = alter::incremental(&default, &BTreeMap::new(), &append).unwrap();
        assert_eq!(next["log.cleanup.policy"], "delete");
        // A topic without an override starts from the value in force.
        let topic = TopicScope(&snapshot);
        let next = alter::incremental(
            &topic,
            &BTreeMap::new(),
            &[ConfigOp {
                name: "cleanup.policy".to_owned(),
                op: 2,
                value: Some("delete".to_owned()),
            }],
        )
        .unwrap();
        assert_eq!(next["cleanup.policy"], "compact,delete");
    }
}
