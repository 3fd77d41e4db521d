//! AlterConfigs (key 33), v0-1, and IncrementalAlterConfigs (key 44), v0, with the resource
//! lookup DescribeConfigs shares.
//!
//! Resources: a topic (type 2, changes its overrides, stored with the catalog) or the broker
//! (type 4: name "0" is this broker, "" the cluster-wide default; changes its dynamic
//! configs, kept in `<data-dir>/broker-configs`). AlterConfigs replaces the resource's whole
//! set of overrides, as Kafka's does; IncrementalAlterConfigs applies SET, DELETE, APPEND and
//! SUBTRACT. A resource's changes apply all or nothing, at once to every partition concerned,
//! and are durable before the answer; with `validate_only` they are only checked. A resource
//! named twice in one request is refused at every mention (INVALID_REQUEST), as Kafka does.
//! BROKER_LOGGER (type 8) is refused with a message saying why; other types are
//! INVALID_REQUEST.

use std::collections::HashMap;
use std::sync::Arc;

use kafka_protocol::messages::{
    AlterConfigsRequest, AlterConfigsResponse, IncrementalAlterConfigsRequest,
    IncrementalAlterConfigsResponse,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::error_code::ErrorCode;

use super::config_resource::{ResourceRef, resolve_resource};
use super::describe_configs::static_broker_entries;
use super::{Context, catalog_error_code, wire_str};
use crate::topics::CatalogError;
use crate::topics::config::alter::{self, ConfigOp};
use crate::topics::config::{BrokerScopeOf, InvalidConfig, Scope};

/// The Kafka error for a refused change.
fn error_of(err: &CatalogError) -> ErrorCode {
    match err {
        CatalogError::InvalidConfig(InvalidConfig::Duplicate { .. }) => ErrorCode::InvalidRequest,
        other => catalog_error_code(other),
    }
}

/// A broker scope that refuses the flags' names as read-only, not unknown.
struct BrokerNames<'a> {
    inner: BrokerScopeOf<'a>,
    fixed: &'a [&'static str],
}

impl Scope for BrokerNames<'_> {
    fn kind(&self, name: &str) -> Result<crate::topics::config::Kind, InvalidConfig> {
        if self.fixed.contains(&name) {
            return Err(InvalidConfig::ReadOnly {
                name: name.to_owned(),
            });
        }
        self.inner.kind(name)
    }

    fn in_force(&self, name: &str) -> Option<String> {
        self.inner.in_force(name)
    }
}

/// What a request asks of one resource.
enum Change {
    /// AlterConfigs: these entries become the whole set.
    Replace(Vec<(String, Option<String>)>),
    /// IncrementalAlterConfigs.
    Ops(Vec<ConfigOp>),
}

/// Applies (or with `validate_only`, checks) `change` to the resource; the error code and
/// message on refusal.
async fn apply(
    ctx: &Arc<Context>,
    target: ResourceRef,
    change: Change,
    validate_only: bool,
) -> Result<(), (ErrorCode, String)> {
    if let (Some(node), ResourceRef::Topic(name)) = (&ctx.cluster, &target) {
        // A cluster: the new overrides are worked out here, checked, and made by the
        // controller; every broker applies them as its metadata catches up.
        let catalog = Arc::clone(&ctx.catalog);
        let topic = name.clone();
        let work = move || {
            catalog.alter_topic_configs(
                &topic,
                |scope, current| match change {
                    Change::Replace(entries) => alter::replace_all(scope, &entries),
                    Change::Ops(ops) => alter::incremental(scope, current, &ops),
                },
                true,
            )
        };
        let new = match tokio::task::spawn_blocking(work).await {
            Ok(Ok(new)) => new,
            Ok(Err(err)) => return Err((error_of(&err), err.to_string())),
            Err(join) => return Err((ErrorCode::UnknownServerError, join.to_string())),
        };
        if validate_only {
            return Ok(());
        }
        let configs = new.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        return super::cluster_admin::set_topic_configs(node, name, configs).await;
    }
    let catalog = Arc::clone(&ctx.catalog);
    let fixed: Vec<&'static str> = static_broker_entries(ctx)
        .into_iter()
        .map(|e| e.name)
        .collect();
    let work = move || match target {
        ResourceRef::Topic(name) => catalog
            .alter_topic_configs(
                &name,
                |scope, current| match change {
                    Change::Replace(entries) => alter::replace_all(scope, &entries),
                    Change::Ops(ops) => alter::incremental(scope, current, &ops),
                },
                validate_only,
            )
            .map(drop),
        ResourceRef::Broker(scope) => catalog
            .alter_broker_configs(
                scope,
                |snapshot, current| {
                    let names = BrokerNames {
                        inner: BrokerScopeOf(snapshot, scope),
                        fixed: &fixed,
                    };
                    match change {
                        Change::Replace(entries) => alter::replace_all(&names, &entries),
                        Change::Ops(ops) => alter::incremental(&names, current, &ops),
                    }
                },
                validate_only,
            )
            .map(drop),
    };
    match tokio::task::spawn_blocking(work).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(err)) => Err((error_of(&err), err.to_string())),
        Err(join) => Err((ErrorCode::UnknownServerError, join.to_string())),
    }
}

/// How many times each resource is named in a request.
fn mentions<'a>(
    resources: impl Iterator<Item = (i8, &'a StrBytes)>,
) -> HashMap<(i8, String), usize> {
    let mut counts = HashMap::new();
    for (kind, name) in resources {
        *counts.entry((kind, name.to_string())).or_default() += 1;
    }
    counts
}

/// One resource's outcome: (error code, message).
async fn outcome(
    ctx: &Arc<Context>,
    counts: &HashMap<(i8, String), usize>,
    kind: i8,
    name: &str,
    change: Change,
    validate_only: bool,
) -> (i16, Option<StrBytes>) {
    if counts.get(&(kind, name.to_owned())).copied().unwrap_or(0) > 1 {
        return (
            ErrorCode::InvalidRequest.code(),
            Some(wire_str(format!(
                "resource {name:?} (type {kind}) appears more than once in the request"
            ))),
        );
    }
    let result = match resolve_resource(ctx, kind, name) {
        Ok(target) => apply(ctx, target, change, validate_only).await,
        Err(refused) => Err(refused),
    };
    match result {
        Ok(()) => (0, None),
        Err((code, message)) => (code.code(), Some(wire_str(message))),
    }
}

pub(crate) async fn alter(
    ctx: &Arc<Context>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    use kafka_protocol::messages::alter_configs_response::AlterConfigsResourceResponse;
    let counts = mentions(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, &r.resource_name)),
    );
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let entries = resource
            .configs
            .iter()
            .map(|c| {
                (
                    c.name.to_string(),
                    c.value.as_ref().map(ToString::to_string),
                )
            })
            .collect();
        let (code, message) = outcome(
            ctx,
            &counts,
            resource.resource_type,
            &resource.resource_name,
            Change::Replace(entries),
            request.validate_only,
        )
        .await;
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub(crate) async fn incremental_alter(
    ctx: &Arc<Context>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    use kafka_protocol::messages::incremental_alter_configs_response::AlterConfigsResourceResponse;
    let counts = mentions(
        request
            .resources
            .iter()
            .map(|r| (r.resource_type, &r.resource_name)),
    );
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in request.resources {
        let ops = resource
            .configs
            .iter()
            .map(|c| ConfigOp {
                name: c.name.to_string(),
                op: c.config_operation,
                value: c.value.as_ref().map(ToString::to_string),
            })
            .collect();
        let (code, message) = outcome(
            ctx,
            &counts,
            resource.resource_type,
            &resource.resource_name,
            Change::Ops(ops),
            request.validate_only,
        )
        .await;
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_error_code(code)
                .with_error_message(message)
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}
