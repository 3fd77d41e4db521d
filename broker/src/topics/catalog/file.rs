//! The catalog file `<data-dir>/topics`: its text (a `topic` line per topic, optional `id`
//! and `local` lines for a topic placed by a cluster, `config` lines for its overrides, a
//! CRC-32 line), reading it back (every override checked again: a bad one is damage),
//! partition directory names, and the removal of directories no local partition owns.
//!
//! A topic's `id` and `local` lines, when present, follow its `topic` line and come before its
//! `config` lines (the order they are written in; reading accepts them anywhere in the topic's
//! lines, each at most once). `local` lists the partitions this broker holds, ascending and
//! below the count, or `-` for none; without it every partition is local. Counts above
//! [`MAX_PARTITIONS`] are damage: no create could have written them, and each partition costs
//! memory before anything else is checked.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{CatalogError, io_err};
use super::{MAX_PARTITIONS, Overrides, Topic};
use crate::topics::config::{ConfigSnapshot, Scope, TopicScope};
use crate::topics::name::validate_topic_name;

/// The file's name in the data directory.
pub(super) const CATALOG_FILE: &str = "topics";

/// The file's contents for `topics`, checksum line included.
pub(super) fn catalog_text(topics: &BTreeMap<String, Arc<Topic>>) -> String {
    let mut text = String::new();
    for topic in topics.values() {
        text.push_str(&format!("topic {} {}\n", topic.name(), topic.count()));
        // A topic of a broker on its own has neither line: its text is as before clusters.
        if let Some(id) = topic.id() {
            text.push_str(&format!("id {}\n", id.hyphenated()));
        }
        if let Some(local) = topic.local_indexes_if_sparse() {
            text.push_str(&local_line(&local));
        }
        for (key, value) in topic.overrides().iter() {
            text.push_str(&format!("config {key} {value}\n"));
        }
    }
    let crc = crc32fast::hash(text.as_bytes());
    text.push_str(&format!("crc32 {crc:08x}\n"));
    text
}

/// `local <i>,<j>,...` (or `local -` for none) and its newline.
fn local_line(local: &[i32]) -> String {
    if local.is_empty() {
        return "local -\n".to_owned();
    }
    let listed: Vec<String> = local.iter().map(i32::to_string).collect();
    format!("local {}\n", listed.join(","))
}

pub(super) fn partition_dir(data_dir: &Path, topic: &str, partition: u32) -> PathBuf {
    data_dir.join(format!("{topic}-{partition}"))
}

/// One topic as the catalog file records it.
#[derive(Debug)]
pub(super) struct CatalogEntry {
    pub(super) name: String,
    /// The cluster-wide partition count, at most [`MAX_PARTITIONS`].
    pub(super) count: u32,
    /// From the `id` line.
    pub(super) id: Option<uuid::Uuid>,
    /// From the `local` line (ascending, each below `count`); `None` when absent: all local.
    pub(super) local: Option<Vec<u32>>,
    pub(super) overrides: Overrides,
}

impl CatalogEntry {
    /// The indexes of the partitions this broker holds, ascending.
    pub(super) fn local_indexes(&self) -> Vec<u32> {
        self.local
            .clone()
            .unwrap_or_else(|| (0..self.count).collect())
    }
}

/// The indexes of a `local` line's value for a topic of `count` partitions.
fn parse_local(list: &str, count: u32) -> Result<Vec<u32>, String> {
    if list == "-" {
        return Ok(Vec::new());
    }
    let mut local: Vec<u32> = Vec::new();
    for item in list.split(',') {
        let index = item
            .parse::<u32>()
            .map_err(|err| format!("local partition {item:?}: {err}"))?;
        if index >= count {
            return Err(format!(
                "local partition {index} of a topic with {count} partitions"
            ));
        }
        if local.last().is_some_and(|&last| index <= last) {
            return Err(format!("local partitions not ascending at {index}"));
        }
        local.push(index);
    }
    Ok(local)
}

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
                if count > MAX_PARTITIONS {
                    return Err(damaged(format!(
                        "topic {name} has {count} partitions (at most {MAX_PARTITIONS})"
                    )));
                }
                entries.push(CatalogEntry {
                    name: name.to_owned(),
                    count,
                    id: None,
                    local: None,
                    overrides: Overrides::new(),
                });
            }
            (Some("id"), Some(id), None, None) => {
                let Some(entry) = entries.last_mut() else {
                    return Err(damaged(format!("id line before any topic: {line:?}")));
                };
                if entry.id.is_some() {
                    return Err(damaged(format!("second id line for topic {}", entry.name)));
                }
                let id = uuid::Uuid::try_parse(id)
                    .map_err(|err| damaged(format!("unreadable line {line:?}: {err}")))?;
                entry.id = Some(id);
            }
            (Some("local"), Some(list), None, None) => {
                let Some(entry) = entries.last_mut() else {
                    return Err(damaged(format!("local line before any topic: {line:?}")));
                };
                if entry.local.is_some() {
                    return Err(damaged(format!(
                        "second local line for topic {}",
                        entry.name
                    )));
                }
                let local = parse_local(list, entry.count)
                    .map_err(|reason| damaged(format!("topic {}: {reason}", entry.name)))?;
                entry.local = Some(local);
            }
            (Some("config"), Some(key), Some(value), None) => {
                let Some(CatalogEntry { overrides, .. }) = entries.last_mut() else {
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

/// Removes partition directories that no local partition of a topic owns: left by a crash
/// mid-create, mid-grow or mid-delete, or a directory `<t>-<p>` of a partition `p` that
/// topic `t` does not hold here.
pub(super) fn remove_orphans(
    data_dir: &Path,
    topics: &BTreeMap<String, Arc<Topic>>,
) -> Result<(), CatalogError> {
    let known: std::collections::HashSet<PathBuf> = topics
        .values()
        .flat_map(|t| {
            t.local_partitions()
                .map(|(_, p)| p.log().dir().to_path_buf())
        })
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
