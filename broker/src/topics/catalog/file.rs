//! The catalog file `<data-dir>/topics`: its text (a `topic` line per topic, `config` lines
//! for its overrides, a CRC-32 line), reading it back (every override checked again: a bad
//! one is damage), partition directory names, and the removal of directories no topic names.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{CatalogError, io_err};
use super::{Overrides, Topic};
use crate::topics::config::{ConfigSnapshot, Scope, TopicScope};
use crate::topics::name::validate_topic_name;

/// The file's name in the data directory.
pub(super) const CATALOG_FILE: &str = "topics";

/// The file's contents for `topics`, checksum line included.
pub(super) fn catalog_text(topics: &BTreeMap<String, Arc<Topic>>) -> String {
    let mut text = String::new();
    for topic in topics.values() {
        text.push_str(&format!(
            "topic {} {}\n",
            topic.name,
            topic.partitions.len()
        ));
        for (key, value) in topic.overrides().iter() {
            text.push_str(&format!("config {key} {value}\n"));
        }
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    text
}

pub(super) fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// One topic as the catalog file records it.
pub(super) type CatalogEntry = (String, u32, Overrides);

pub(super) fn read_catalog(data_dir: &Path) -> Result<Vec<CatalogEntry>, CatalogError> {
    let path = data_dir.join(CATALOG_FILE);
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(io_err("read topic catalog", &path)(e)),
    };
    let damaged = |reason: String| CatalogError::Damaged {
        path: path.clone(),
        reason,
    };
    let body = crate::topics::config::checked_body(&text).map_err(damaged)?;
    let defaults = ConfigSnapshot::kafka_defaults();
    let scope = TopicScope(&defaults);
    let mut entries: Vec<CatalogEntry> = Vec::new();
    for line in body.lines() {
        let mut words = line.split(' ');
        match (words.next(), words.next(), words.next(), words.next()) {
            (Some("topic"), Some(name), Some(count), None) if validate_topic_name(name).is_ok() => {
                let count = count
                    .parse::<u32>()
                    .map_err(|err| damaged(format!("unreadable line {line:?}: {err}")))?;
                entries.push((name.to_owned(), count, Overrides::new()));
            }
            (Some("config"), Some(key), Some(value), None) => {
                let Some((_, _, overrides)) = entries.last_mut() else {
                    return Err(damaged(format!("config line before any topic: {line:?}")));
                };
                let checked = scope
                    .kind(key)
                    .and_then(|kind| kind.parse(key, value))
                    .map_err(|err| damaged(err.to_string()))?;
                overrides.insert(key.to_owned(), checked.to_text());
            }
            _ => return Err(damaged(format!("unreadable line {line:?}"))),
        }
    }
    Ok(entries)
}

/// Removes partition directories that no topic names (left by a crash mid-create or
/// mid-delete).
pub(super) fn remove_orphans(
    data_dir: &Path,
    topics: &BTreeMap<String, Arc<Topic>>,
) -> Result<(), CatalogError> {
    let known: std::collections::HashSet<PathBuf> = topics
        .values()
        .flat_map(|t| t.partitions.iter().map(|p| p.log().dir().to_path_buf()))
        .collect();
    for entry in std::fs::read_dir(data_dir).map_err(io_err("list data directory", data_dir))? {
        let entry = entry.map_err(io_err("list data directory", data_dir))?;
        let path = entry.path();
        let looks_like_partition = entry.file_type().is_ok_and(|t| t.is_dir())
            && entry
                .file_name()
                .to_str()
                .and_then(|n| n.rsplit_once('-'))
                .is_some_and(|(topic, p)| {
                    validate_topic_name(topic).is_ok()
                        && !p.is_empty()
                        && p.bytes().all(|b| b.is_ascii_digit())
                });
        if looks_like_partition && !known.contains(&path) {
            tracing::warn!(dir = %path.display(), "removing a partition directory no topic names");
            std::fs::remove_dir_all(&path)
                .map_err(io_err("remove orphan partition directory", &path))?;
        }
    }
    Ok(())
}
