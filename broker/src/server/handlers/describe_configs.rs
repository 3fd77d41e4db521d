//! DescribeConfigs (key 32), v1-3: the configuration in force for topics and the broker.
//!
//! A topic's entries are every topic config ([`crate::topics::config`]) with its value in
//! force and Kafka's source: the topic's override (DYNAMIC_TOPIC_CONFIG), a dynamic broker
//! config (DYNAMIC_BROKER_CONFIG / DYNAMIC_DEFAULT_BROKER_CONFIG), a broker flag
//! (STATIC_BROKER_CONFIG) or Kafka's default (DEFAULT_CONFIG); with `include_synonyms`, every
//! layer that sets it. The broker "0" reports its dynamic configs (changeable, read_only
//! false) and its flags (read-only, STATIC_BROKER_CONFIG); the broker "" (the cluster-wide
//! default, as `kafka-configs --entity-default`) reports only the dynamic defaults set. v3
//! adds each config's type and, with `include_documentation`, its documentation.

use std::sync::Arc;

use kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResult, DescribeConfigsSynonym,
};
use kafka_protocol::messages::{DescribeConfigsRequest, DescribeConfigsResponse};
use weir_protocol::error_code::ErrorCode;

use super::config_resource::{ResourceRef, resolve_resource};
use super::{Context, wire_str};
use crate::topics::config::{BrokerScope, ConfigSource, ConfigType, ResolvedConfig, Synonym};

/// A broker setting fixed by a flag, reported read-only.
pub(crate) struct StaticEntry {
    pub(crate) name: &'static str,
    pub(crate) value: String,
    pub(crate) config_type: ConfigType,
    pub(crate) doc: &'static str,
}

fn fixed(
    name: &'static str,
    value: impl ToString,
    config_type: ConfigType,
    doc: &'static str,
) -> StaticEntry {
    StaticEntry {
        name,
        value: value.to_string(),
        config_type,
        doc,
    }
}

/// The broker's settings that only a restart with other flags changes.
pub(crate) fn static_broker_entries(ctx: &Context) -> Vec<StaticEntry> {
    let c = &ctx.config;
    vec![
        fixed(
            "advertised.listeners",
            format!(
                "PLAINTEXT://{}:{}",
                ctx.advertised_host, ctx.advertised_port
            ),
            ConfigType::String,
            "The address given to clients (--advertised-host and the bound port).",
        ),
        fixed(
            "auto.create.topics.enable",
            c.auto_create_topics,
            ConfigType::Boolean,
            "Whether a topic is created when a client asks for its metadata \
             (--auto-create-topics).",
        ),
        fixed(
            "broker.id",
            ctx.node_id(),
            ConfigType::Int,
            "This broker's id (--node-id in a cluster; 0 for a single broker).",
        ),
        fixed(
            "connections.max.idle.ms",
            c.idle_timeout_secs.saturating_mul(1000),
            ConfigType::Long,
            "Idle connections are closed after this long (--idle-timeout-secs).",
        ),
        fixed(
            "listeners",
            format!("PLAINTEXT://{}", c.listen),
            ConfigType::String,
            "The address clients connect to (--listen).",
        ),
        fixed(
            "log.dirs",
            c.data_dir.display(),
            ConfigType::String,
            "The data directory (--data-dir).",
        ),
        fixed(
            "log.retention.check.interval.ms",
            c.retention_check_ms,
            ConfigType::Long,
            "How often retention runs (--retention-check-ms).",
        ),
        fixed(
            "max.connections",
            c.max_connections,
            ConfigType::Int,
            "Most connections served at once (--max-connections).",
        ),
        fixed(
            "num.partitions",
            c.default_partitions,
            ConfigType::Int,
            "Partitions of an auto-created topic (--default-partitions).",
        ),
        fixed(
            "socket.request.max.bytes",
            c.max_frame_bytes,
            ConfigType::Int,
            "Largest request accepted (--max-frame-bytes).",
        ),
    ]
}

/// One entry as the protocol carries it.
struct Row {
    name: &'static str,
    value: String,
    source: ConfigSource,
    read_only: bool,
    synonyms: Vec<Synonym>,
    config_type: ConfigType,
    doc: &'static str,
}

impl From<ResolvedConfig> for Row {
    fn from(c: ResolvedConfig) -> Self {
        Self {
            name: c.name,
            value: c.value,
            source: c.source,
            read_only: c.read_only,
            synonyms: c.synonyms,
            config_type: c.kind.config_type(),
            doc: c.doc,
        }
    }
}

impl From<StaticEntry> for Row {
    fn from(e: StaticEntry) -> Self {
        let source = if e.name == "broker.id" {
            ConfigSource::Default
        } else {
            ConfigSource::StaticBroker
        };
        Self {
            name: e.name,
            synonyms: vec![Synonym {
                name: e.name,
                value: e.value.clone(),
                source,
            }],
            value: e.value,
            source,
            read_only: true,
            config_type: e.config_type,
            doc: e.doc,
        }
    }
}

fn rows(ctx: &Context, resource: ResourceRef) -> Vec<Row> {
    match resource {
        ResourceRef::Topic(name) => ctx
            .catalog
            .topic_configs(&name)
            .unwrap_or_default()
            .into_iter()
            .map(Row::from)
            .collect(),
        ResourceRef::Broker(scope) => {
            let snapshot = ctx.catalog.config_snapshot();
            let mut rows: Vec<Row> = snapshot
                .layers()
                .broker(scope)
                .into_iter()
                .map(Row::from)
                .collect();
            if scope == BrokerScope::ThisBroker {
                rows.extend(static_broker_entries(ctx).into_iter().map(Row::from));
            }
            rows.sort_by_key(|r| r.name);
            rows
        }
    }
}

pub(crate) fn handle(
    ctx: &Arc<Context>,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let wanted = Wanted {
        synonyms: request.include_synonyms,
        documentation: request.include_documentation,
        version,
    };
    let results = request
        .resources
        .into_iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            let target =
                match resolve_resource(ctx, resource.resource_type, &resource.resource_name) {
                    Ok(target) => target,
                    Err((code, message)) => {
                        return refuse(result, code, message);
                    }
                };
            let configs = rows(ctx, target)
                .into_iter()
                // No keys (null or, as Kafka also reads it, empty) means every config.
                .filter(|r| {
                    resource
                        .configuration_keys
                        .as_ref()
                        .filter(|keys| !keys.is_empty())
                        .is_none_or(|keys| keys.iter().any(|k| **k == *r.name))
                })
                .map(|r| entry(r, wanted))
                .collect();
            result.with_configs(configs)
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn refuse(
    result: DescribeConfigsResult,
    code: ErrorCode,
    message: String,
) -> DescribeConfigsResult {
    result
        .with_error_code(code.code())
        .with_error_message(Some(wire_str(message)))
}

/// What the request asked each entry to carry.
#[derive(Clone, Copy)]
struct Wanted {
    synonyms: bool,
    documentation: bool,
    version: i16,
}

fn entry(r: Row, wanted: Wanted) -> DescribeConfigsResourceResult {
    let synonyms = if wanted.synonyms {
        r.synonyms
            .into_iter()
            .map(|s| {
                DescribeConfigsSynonym::default()
                    .with_name(wire_str(s.name))
                    .with_value(Some(wire_str(s.value)))
                    .with_source(s.source as i8)
            })
            .collect()
    } else {
        Vec::new()
    };
    let mut entry = DescribeConfigsResourceResult::default()
        .with_name(wire_str(r.name))
        .with_value(Some(wire_str(r.value)))
        .with_read_only(r.read_only)
        .with_config_source(r.source as i8)
        .with_is_sensitive(false)
        .with_synonyms(synonyms);
    if wanted.version >= 3 {
        entry = entry.with_config_type(r.config_type as i8);
        if wanted.documentation {
            entry = entry.with_documentation(Some(wire_str(r.doc)));
        }
    }
    entry
}
