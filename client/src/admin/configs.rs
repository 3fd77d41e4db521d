//! Topic and broker configuration: read it (DescribeConfigs) and change it
//! (IncrementalAlterConfigs), for the admin client.
//!
//! ```no_run
//! # async fn example() -> weir_client::Result<()> {
//! use weir_client::admin::configs::{AlterConfigOp, ConfigResource};
//! use weir_client::{Admin, ClientConfig};
//!
//! let admin = Admin::new(ClientConfig::new(["127.0.0.1:9092"]));
//! let orders = ConfigResource::Topic("orders".into());
//! admin
//!     .incremental_alter_configs(&orders, &[AlterConfigOp::set("retention.ms", "86400000")], false)
//!     .await?;
//! for entry in admin.describe_configs(&orders).await? {
//!     println!("{} = {:?} ({:?})", entry.name, entry.value, entry.source);
//! }
//! # Ok(())
//! # }
//! ```

use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig,
};
use kafka_protocol::messages::{DescribeConfigsRequest, IncrementalAlterConfigsRequest};

use super::{Admin, s};
use crate::connection::Request;
use crate::error::{Error, Result};

/// Something that has configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigResource {
    /// A topic.
    Topic(String),
    /// A broker, by id.
    Broker(i32),
    /// The cluster-wide default of every broker setting (`kafka-configs --entity-default`).
    BrokerDefault,
}

impl ConfigResource {
    fn wire(&self) -> (i8, String) {
        match self {
            Self::Topic(name) => (2, name.clone()),
            Self::Broker(id) => (4, id.to_string()),
            Self::BrokerDefault => (4, String::new()),
        }
    }
}

impl std::fmt::Display for ConfigResource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Topic(name) => write!(f, "topic {name}"),
            Self::Broker(id) => write!(f, "broker {id}"),
            Self::BrokerDefault => f.write_str("the cluster-wide broker default"),
        }
    }
}

/// Where a value comes from (Kafka's config sources).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigSource {
    /// The topic's own override.
    DynamicTopic,
    /// A dynamic setting of this broker.
    DynamicBroker,
    /// The cluster-wide dynamic default.
    DynamicDefaultBroker,
    /// The broker's start-up configuration.
    StaticBroker,
    /// The built-in default.
    Default,
    /// A code this client does not know.
    Other(i8),
}

impl From<i8> for ConfigSource {
    fn from(code: i8) -> Self {
        match code {
            1 => Self::DynamicTopic,
            2 => Self::DynamicBroker,
            3 => Self::DynamicDefaultBroker,
            4 => Self::StaticBroker,
            5 => Self::Default,
            other => Self::Other(other),
        }
    }
}

/// One layer setting a config.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigSynonym {
    /// The name in that layer.
    pub name: String,
    /// The value there.
    pub value: Option<String>,
    /// The layer.
    pub source: ConfigSource,
}

/// One config as the broker reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Kafka's name.
    pub name: String,
    /// The value in force (`None` for sensitive ones).
    pub value: Option<String>,
    /// Where it comes from.
    pub source: ConfigSource,
    /// Whether it cannot be changed while the broker runs.
    pub read_only: bool,
    /// Whether the value is hidden.
    pub is_sensitive: bool,
    /// Every layer setting it, the one in force first.
    pub synonyms: Vec<ConfigSynonym>,
    /// The broker's documentation of it, when it sends one.
    pub documentation: Option<String>,
}

/// One change of IncrementalAlterConfigs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum AlterConfigOp {
    /// Set `name` to `value`.
    Set(String, String),
    /// Remove the override of `name` (back to the value beneath).
    Delete(String),
    /// Add items to a list config (`cleanup.policy`).
    Append(String, String),
    /// Remove items from a list config.
    Subtract(String, String),
}

impl AlterConfigOp {
    /// [`Self::Set`].
    pub fn set(name: impl Into<String>, value: impl Into<String>) -> Self {
        Self::Set(name.into(), value.into())
    }

    /// [`Self::Delete`].
    pub fn delete(name: impl Into<String>) -> Self {
        Self::Delete(name.into())
    }

    fn wire(&self) -> AlterableConfig {
        let (name, op, value) = match self {
            Self::Set(n, v) => (n, 0, Some(v)),
            Self::Delete(n) => (n, 1, None),
            Self::Append(n, v) => (n, 2, Some(v)),
            Self::Subtract(n, v) => (n, 3, Some(v)),
        };
        AlterableConfig::default()
            .with_name(s(name))
            .with_config_operation(op)
            .with_value(value.map(|v| s(v)))
    }
}

impl Admin {
    /// A broker's own configs are answered by that broker (Kafka refuses a broker id other
    /// than its own); anything else goes where admin requests go.
    async fn send_config_request<R: Request>(
        &self,
        resource: &ConfigResource,
        request: R,
    ) -> Result<R::Response> {
        match resource {
            ConfigResource::Broker(id) => {
                if self.cluster.brokers().await.iter().all(|(b, _)| b != id) {
                    self.cluster.refresh(Some(&[])).await?;
                }
                self.cluster.call(*id, request).await
            }
            ConfigResource::Topic(_) | ConfigResource::BrokerDefault => {
                self.cluster.call_admin(request).await
            }
        }
    }

    /// Every config of `resource` with its value in force, source and synonyms (and
    /// documentation where the broker sends it).
    ///
    /// # Errors
    /// The broker's refusal (UNKNOWN_TOPIC_OR_PARTITION for a topic that does not exist) or
    /// a network error.
    pub async fn describe_configs(&self, resource: &ConfigResource) -> Result<Vec<ConfigEntry>> {
        let (kind, name) = resource.wire();
        let request = DescribeConfigsRequest::default()
            .with_include_synonyms(true)
            .with_include_documentation(true)
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(s(&name))
                    .with_configuration_keys(None),
            ]);
        let response = self.send_config_request(resource, request).await?;
        let mut entries = Vec::new();
        for result in response.results {
            if let Some(err) =
                Error::from_code(result.error_code, result.error_message.as_deref(), || {
                    format!("describing the configs of {resource}")
                })
            {
                return Err(err);
            }
            entries.extend(result.configs.into_iter().map(|c| {
                ConfigEntry {
                    name: c.name.to_string(),
                    value: c.value.map(|v| v.to_string()),
                    source: ConfigSource::from(c.config_source),
                    read_only: c.read_only,
                    is_sensitive: c.is_sensitive,
                    synonyms: c
                        .synonyms
                        .into_iter()
                        .map(|y| ConfigSynonym {
                            name: y.name.to_string(),
                            value: y.value.map(|v| v.to_string()),
                            source: ConfigSource::from(y.source),
                        })
                        .collect(),
                    documentation: c
                        .documentation
                        .map(|d| d.to_string())
                        .filter(|d| !d.is_empty()),
                }
            }));
        }
        Ok(entries)
    }

    /// Applies `ops` to `resource`'s configs, all or nothing; with `validate_only` the broker
    /// only checks them.
    ///
    /// # Errors
    /// The broker's refusal (INVALID_CONFIG naming the key and the accepted range) or a
    /// network error.
    pub async fn incremental_alter_configs(
        &self,
        resource: &ConfigResource,
        ops: &[AlterConfigOp],
        validate_only: bool,
    ) -> Result<()> {
        let (kind, name) = resource.wire();
        let request = IncrementalAlterConfigsRequest::default()
            .with_validate_only(validate_only)
            .with_resources(vec![
                AlterConfigsResource::default()
                    .with_resource_type(kind)
                    .with_resource_name(s(&name))
                    .with_configs(ops.iter().map(AlterConfigOp::wire).collect()),
            ]);
        let response = self.send_config_request(resource, request).await?;
        response
            .responses
            .iter()
            .find_map(|r| {
                Error::from_code(r.error_code, r.error_message.as_deref(), || {
                    format!("changing the configs of {resource}")
                })
            })
            .map_or(Ok(()), Err)
    }
}
