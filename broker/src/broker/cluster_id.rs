//! The cluster id: `<data-dir>/cluster-id`, created on the first start and kept for good.
//!
//! Owns the file's content and Kafka's text form of the id (a random v4 UUID in URL-safe
//! base64 without padding). Does not serve it (Metadata and DescribeCluster read it from the
//! server's context). Invariant: an id once on disk is never replaced, whatever its form, so a
//! cluster never changes identity.

use std::path::Path;

use crate::storage::Disk;

/// The cluster id stored in `<data-dir>/cluster-id`, created on first start: a random UUID
/// (version 4) written as Kafka writes one, URL-safe base64 without padding (22 characters).
/// An id already on disk is kept whatever its form, so a cluster never changes identity.
pub(crate) fn cluster_id(data_dir: &Path, disk: &dyn Disk) -> std::io::Result<String> {
    cluster_id_with(data_dir, disk, uuid::Uuid::new_v4)
}

/// [`cluster_id`] with the source of random UUIDs injected (tests).
fn cluster_id_with(
    data_dir: &Path,
    disk: &dyn Disk,
    mut random: impl FnMut() -> uuid::Uuid,
) -> std::io::Result<String> {
    let path = data_dir.join("cluster-id");
    match std::fs::read_to_string(&path) {
        Ok(id) if !id.trim().is_empty() => return Ok(id.trim().to_owned()),
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let id = crate::cluster::ids::random_cluster_id(&mut random);
    std::fs::create_dir_all(data_dir)?;
    crate::storage::files::write_atomically(data_dir, "cluster-id", id.as_bytes(), disk)?;
    Ok(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cluster::ids::encode_uuid;
    use crate::storage::OsDisk;

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
        let id = cluster_id(dir.path(), &OsDisk).unwrap();
        assert_eq!(id.len(), 22);
        assert!(!id.starts_with('-'));
        assert!(
            id.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        );
        // The stored id is read back, not regenerated.
        assert_eq!(cluster_id(dir.path(), &OsDisk).unwrap(), id);
        let other = tempfile::tempdir().unwrap();
        assert_ne!(cluster_id(other.path(), &OsDisk).unwrap(), id);

        // Drawn from the injected source: the nil id and ids starting with '-' are skipped.
        let dir = tempfile::tempdir().unwrap();
        let dash = uuid::Uuid::from_bytes([0xf8; 16]); // "-Pj4..."
        assert!(encode_uuid(&dash).starts_with('-'));
        let good = uuid::Uuid::parse_str("123e4567-e89b-42d3-a456-426614174000").unwrap();
        let mut draws = vec![good, dash, uuid::Uuid::nil()];
        let id = cluster_id_with(dir.path(), &OsDisk, || draws.pop().unwrap()).unwrap();
        assert_eq!(id, "Ej5FZ-ibQtOkVkJmFBdAAA");
        assert!(draws.is_empty());
    }

    #[test]
    fn an_existing_cluster_id_of_any_form_is_kept() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("cluster-id"), "old-hand-rolled-id-xyz\n").unwrap();
        let id = cluster_id_with(dir.path(), &OsDisk, || panic!("must not generate")).unwrap();
        assert_eq!(id, "old-hand-rolled-id-xyz");
    }
}
