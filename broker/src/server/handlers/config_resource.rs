//! Which resource a config request names: a topic, this broker or the cluster-wide default
//! ([`ResourceRef`]), resolved from the wire's (type, name) with Kafka's refusals. Shared by
//! DescribeConfigs and the two alter APIs.

use weir_protocol::error_code::ErrorCode;

use super::Context;
use crate::topics::config::BrokerScope;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const RESOURCE_BROKER_LOGGER: i8 = 8;

/// A resource whose configs are asked about or changed.
#[derive(Debug, Clone)]
pub(crate) enum ResourceRef {
    /// An existing topic.
    Topic(String),
    /// This broker or the cluster-wide default.
    Broker(BrokerScope),
}

/// The resource `(kind, name)` names, or the error and message to answer with.
pub(crate) fn resolve_resource(
    ctx: &Context,
    kind: i8,
    name: &str,
) -> Result<ResourceRef, (ErrorCode, String)> {
    match kind {
        RESOURCE_TOPIC => {
            if ctx.catalog.get(name).is_none() {
                return Err((
                    ErrorCode::UnknownTopicOrPartition,
                    format!("topic {name} does not exist"),
                ));
            }
            Ok(ResourceRef::Topic(name.to_owned()))
        }
        RESOURCE_BROKER if name.is_empty() => Ok(ResourceRef::Broker(BrokerScope::ClusterDefault)),
        RESOURCE_BROKER if name == ctx.node_id().to_string() => {
            Ok(ResourceRef::Broker(BrokerScope::ThisBroker))
        }
        RESOURCE_BROKER => Err((
            ErrorCode::InvalidRequest,
            format!(
                "there is no broker {name} here; this is broker {} (ask each broker for its own configs)",
                ctx.node_id()
            ),
        )),
        RESOURCE_BROKER_LOGGER => Err((
            ErrorCode::InvalidRequest,
            "broker loggers (BROKER_LOGGER) are not configurable here: Weir's log levels are \
             set at start-up by WEIR_LOG"
                .to_owned(),
        )),
        other => Err((
            ErrorCode::InvalidRequest,
            format!("resource type {other} has no configuration here"),
        )),
    }
}
