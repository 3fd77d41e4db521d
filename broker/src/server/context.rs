//! State shared by every connection of one broker.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use tokio::sync::Semaphore;

use super::appends::AppendWaiters;
use super::group_service::GroupService;
use crate::clock::Clock;
use crate::config::BrokerConfig;
use crate::groups::offsets::OffsetStore;
use crate::producers::ProducerIds;
use crate::topics::TopicCatalog;

/// Shared broker state.
#[derive(Debug)]
pub(crate) struct Context {
    pub(crate) config: BrokerConfig,
    pub(crate) catalog: Arc<TopicCatalog>,
    /// Host and port given to clients in metadata.
    pub(crate) advertised_host: String,
    pub(crate) advertised_port: i32,
    pub(crate) cluster_id: String,
    /// Long-polling fetches by partition, woken by appends to their partitions only.
    pub(crate) appended: AppendWaiters,
    /// Producer ids for InitProducerId.
    pub(crate) producer_ids: ProducerIds,
    /// The consumer-group coordinator.
    pub(crate) groups: Arc<GroupService>,
    /// Committed offsets of consumer groups.
    pub(crate) offsets: Arc<OffsetStore>,
    /// Wall-clock time (commit timestamps, group timers).
    pub(crate) clock: Arc<dyn Clock>,
    /// Permits are request bytes, `config.produce_budget()` of them: taken by a large frame
    /// before its body is read (until decoded) and by a produce until it is handled. A
    /// connection that would exceed it stops reading until others finish: memory stays
    /// bounded however many clients send at once.
    pub(crate) request_bytes: Arc<Semaphore>,
}

/// The broker's node id: there is one broker.
pub(crate) const NODE_ID: i32 = 0;

impl Context {
    pub(crate) fn new(
        config: BrokerConfig,
        bound: SocketAddr,
        catalog: TopicCatalog,
        cluster_id: String,
        producer_ids: ProducerIds,
        offsets: OffsetStore,
        clock: Arc<dyn Clock>,
    ) -> Self {
        let advertised_host = config.advertised_host.clone().unwrap_or_else(|| {
            // Clients must reach us at a concrete address: an unspecified listen address
            // advertises loopback (never "localhost", which librdkafka may resolve to ::1).
            if bound.ip().is_unspecified() {
                "127.0.0.1".to_owned()
            } else {
                bound.ip().to_string()
            }
        });
        Self {
            advertised_host,
            advertised_port: i32::from(bound.port()),
            catalog: Arc::new(catalog),
            cluster_id,
            producer_ids,
            groups: Arc::new(GroupService::new(config.group_config(), Arc::clone(&clock))),
            offsets: Arc::new(offsets),
            clock,
            appended: AppendWaiters::default(),
            request_bytes: Arc::new(Semaphore::new(
                usize::try_from(config.produce_budget()).unwrap_or(Semaphore::MAX_PERMITS),
            )),
            config,
        }
    }
}

/// The cluster id stored in `<data-dir>/cluster-id`, created on first start: a random UUID
/// (version 4) written as Kafka writes one, URL-safe base64 without padding (22 characters).
/// An id already on disk is kept whatever its form, so a cluster never changes identity.
pub(crate) fn cluster_id(data_dir: &Path) -> std::io::Result<String> {
    cluster_id_with(data_dir, uuid::Uuid::new_v4)
}

/// [`cluster_id`] with the source of random UUIDs injected (tests).
fn cluster_id_with(
    data_dir: &Path,
    mut random: impl FnMut() -> uuid::Uuid,
) -> std::io::Result<String> {
    let path = data_dir.join("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    // As Kafka's `Uuid.randomUuid()`: never the nil id, and never one whose text starts with
    // '-', which command-line tools would take for a flag. A v4 id starts with '-' with
    // probability 1/64, so this ends after a few draws.
    let id = loop {
        let uuid = random();
        let text = encode_uuid(&uuid);
        if !uuid.is_nil() && !text.starts_with('-') {
            break text;
        }
    };
    std::fs::create_dir_all(data_dir)?;
    crate::storage::files::write_atomically(
        data_dir,
        "cluster-id",
        id.as_bytes(),
        &crate::log::OsDisk,
    )?;
    Ok(id)
}

/// Kafka's text form of a UUID (`Uuid.toString()`): the 16 bytes, big-endian, in URL-safe
/// base64 without padding. Sixteen bytes are five 3-byte groups and one byte left over: 22
/// characters.
fn encode_uuid(uuid: &uuid::Uuid) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let bytes = uuid.as_bytes();
    let mut out = String::with_capacity(22);
    for group in bytes.chunks(3) {
        let bits = group
            .iter()
            .enumerate()
            .fold(0u32, |acc, (i, &b)| acc | u32::from(b) << (16 - 8 * i));
        // A full group gives 4 characters; the last, one-byte group gives 2.
        let chars = group.len() + 1;
        for k in 0..chars {
            out.push(char::from(ALPHABET[(bits >> (18 - 6 * k) & 63) as usize]));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_written_as_kafka_writes_them() {
        // Expected values from Python's base64.urlsafe_b64encode, padding stripped.
        let uuid = uuid::Uuid::parse_str("123e4567-e89b-42d3-a456-426614174000").unwrap();
        assert_eq!(encode_uuid(&uuid), "Ej5FZ-ibQtOkVkJmFBdAAA");
        let high: Vec<u8> = (0xf0..=0xff).collect();
        let uuid = uuid::Uuid::from_slice(&high).unwrap();
        assert_eq!(encode_uuid(&uuid), "8PHy8_T19vf4-fr7_P3-_w");
    }

    #[test]
    fn a_new_cluster_id_is_a_random_v4_uuid_and_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        let id = cluster_id(dir.path()).unwrap();
        assert_eq!(id.len(), 22);
        assert!(!id.starts_with('-'));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // The stored id is read back, not regenerated.
        assert_eq!(cluster_id(dir.path()).unwrap(), id);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(cluster_id(other.path()).unwrap(), id);

        // Drawn from the injected source: the nil id and ids starting with '-' are skipped.
        let dir = tempfile::tempdir().unwrap();
        let dash = uuid::Uuid::from_bytes([0xf8; 16]); // "-Pj4..."
        assert!(encode_uuid(&dash).starts_with('-'));
        let good = uuid::Uuid::parse_str("123e4567-e89b-42d3-a456-426614174000").unwrap();
        let mut draws = vec![good, dash, uuid::Uuid::nil()];
        let id = cluster_id_with(dir.path(), || draws.pop().unwrap()).unwrap();
        assert_eq!(id, "Ej5FZ-ibQtOkVkJmFBdAAA");
        assert!(draws.is_empty());
    }

    #[test]
    fn an_existing_cluster_id_of_any_form_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster-id"), "old-hand-rolled-id-xyz\n").unwrap();
        let id = cluster_id_with(dir.path(), || panic!("must not generate")).unwrap();
        assert_eq!(id, "old-hand-rolled-id-xyz");
    }
}
