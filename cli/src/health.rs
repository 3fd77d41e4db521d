//! Never silent: while `weir consume` waits for records or `weir produce` waits for
//! acknowledgements, the clients retry by themselves and would say nothing. This module asks
//! the cluster directly (a metadata request for the command's topics, on its own connection
//! with short timeouts) and turns the answer into a line on stderr when the state changes:
//! the broker stopped answering, it answers again, a topic no longer exists, some partition
//! has no leader (in a cluster: its broker is down) or has one again.
//!
//! The transitions ([`Reporter::observe`]) are a pure function of the previous and the new
//! state, so each outage is told once, not once per probe.

use std::sync::Arc;
use std::time::Duration;

use weir_client::{ClientConfig, Cluster};

use crate::error::CliError;

/// Longest a probe may take (connect, then the metadata request).
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long without progress before a probe: quick enough to tell within a few seconds.
pub(crate) const PROBE_AFTER: Duration = Duration::from_secs(2);

/// What a probe found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Health {
    /// The broker answered and every topic exists.
    Fine,
    /// No broker answered; the message says why and what to check.
    Unreachable(String),
    /// The broker answered, but these topics do not exist.
    TopicsGone(Vec<String>),
    /// Every topic exists, but these partitions (`topic-partition`) have no leader: in a
    /// cluster, their broker is down; their records wait while the others go on.
    NoLeader(Vec<String>),
}

/// Partitions named in a warning; the rest are counted.
const PARTITIONS_NAMED: usize = 5;

/// Metadata requests for a command's topics, on a cluster view of their own.
#[derive(Debug)]
pub(crate) struct Probe {
    cluster: Arc<Cluster>,
    bootstrap: Vec<String>,
    topics: Vec<String>,
}

impl Probe {
    /// Probes the brokers of `config` about `topics`, with short timeouts.
    pub(crate) fn new(config: &ClientConfig, topics: &[String]) -> Self {
        let config = config
            .clone()
            .connect_timeout(PROBE_TIMEOUT)
            .request_timeout(PROBE_TIMEOUT)
            .reconnect_backoff(Duration::from_millis(10), Duration::from_millis(100))
            // Asking must never create a topic.
            .allow_auto_create_topics(false);
        Self {
            bootstrap: config.bootstrap.clone(),
            cluster: Cluster::new(config),
            topics: topics.to_vec(),
        }
    }

    /// Asks the cluster now.
    pub(crate) async fn check(&self) -> Health {
        let names: Vec<&str> = self.topics.iter().map(String::as_str).collect();
        match self.cluster.refresh(Some(&names)).await {
            Err(err) => Health::Unreachable(CliError::client(&self.bootstrap, err).to_string()),
            Ok(infos) => {
                let gone: Vec<String> = self
                    .topics
                    .iter()
                    .filter(|t| {
                        !infos
                            .iter()
                            .any(|i| &i.name == *t && !i.partitions.is_empty())
                    })
                    .cloned()
                    .collect();
                let leaderless: Vec<String> = infos
                    .iter()
                    .filter(|i| self.topics.contains(&i.name))
                    .flat_map(|i| {
                        i.partitions
                            .iter()
                            .filter(|p| p.leader < 0)
                            .map(|p| format!("{}-{}", i.name, p.partition))
                    })
                    .collect();
                if !gone.is_empty() {
                    Health::TopicsGone(gone)
                } else if !leaderless.is_empty() {
                    Health::NoLeader(leaderless)
                } else {
                    Health::Fine
                }
            }
        }
    }
}

/// The last state told, to tell only changes.
#[derive(Debug)]
pub(crate) struct Reporter {
    last: Health,
    /// What retrying means for this command, appended to warnings.
    retrying: String,
}

impl Reporter {
    /// Starts from a healthy state (the command checked the cluster when it started).
    pub(crate) fn new(retrying: impl Into<String>) -> Self {
        Self {
            last: Health::Fine,
            retrying: retrying.into(),
        }
    }

    /// The line to print for `now`, if it differs from what was last told.
    pub(crate) fn observe(&mut self, now: Health) -> Option<String> {
        if now == self.last {
            return None;
        }
        let line = match &now {
            Health::Unreachable(why) => Some(format!("warning: {why}; {}", self.retrying)),
            Health::TopicsGone(topics) => Some(format!(
                "warning: topic{} {} no longer exist{}; {}",
                if topics.len() == 1 { "" } else { "s" },
                topics.join(", "),
                if topics.len() == 1 { "s" } else { "" },
                self.retrying
            )),
            Health::NoLeader(partitions) => Some(format!(
                "warning: {} no leader (its broker is down, or leadership is moving); {}",
                name_partitions(partitions),
                self.retrying
            )),
            Health::Fine => match &self.last {
                Health::NoLeader(_) => Some("note: every partition has a leader again".to_owned()),
                Health::TopicsGone(topics) => Some(format!(
                    "note: topic{} {} exist{} again",
                    if topics.len() == 1 { "" } else { "s" },
                    topics.join(", "),
                    if topics.len() == 1 { "s" } else { "" },
                )),
                _ => Some("note: the broker answers again".to_owned()),
            },
        };
        self.last = now;
        line
    }
}

/// `partition t-2 has`, `partitions t-1, t-2 have`, `partitions t-0, ... and 3 more have`.
fn name_partitions(partitions: &[String]) -> String {
    let named = partitions
        .iter()
        .take(PARTITIONS_NAMED)
        .cloned()
        .collect::<Vec<_>>();
    let more = partitions.len().saturating_sub(PARTITIONS_NAMED);
    match (partitions.len(), more) {
        (1, _) => format!("partition {} has", named.join(", ")),
        (_, 0) => format!("partitions {} have", named.join(", ")),
        _ => format!("partitions {} and {more} more have", named.join(", ")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_change_is_told_once() {
        let mut r = Reporter::new("retrying");
        assert_eq!(r.observe(Health::Fine), None);
        let down = Health::Unreachable("cannot reach a broker at b: connection refused".into());
        assert_eq!(
            r.observe(down.clone()).as_deref(),
            Some("warning: cannot reach a broker at b: connection refused; retrying")
        );
        assert_eq!(r.observe(down), None, "told once per outage");
        assert_eq!(
            r.observe(Health::Fine).as_deref(),
            Some("note: the broker answers again")
        );
        assert_eq!(
            r.observe(Health::TopicsGone(vec!["t".into()])).as_deref(),
            Some("warning: topic t no longer exists; retrying")
        );
        assert_eq!(
            r.observe(Health::TopicsGone(vec!["a".into(), "b".into()]))
                .as_deref(),
            Some("warning: topics a, b no longer exist; retrying")
        );
        assert_eq!(
            r.observe(Health::Fine).as_deref(),
            Some("note: topics a, b exist again")
        );
        assert_eq!(
            r.observe(Health::NoLeader(vec!["t-2".into()])).as_deref(),
            Some(
                "warning: partition t-2 has no leader (its broker is down, or leadership is \
                 moving); retrying"
            )
        );
        assert_eq!(r.observe(Health::NoLeader(vec!["t-2".into()])), None);
        assert_eq!(
            r.observe(Health::Fine).as_deref(),
            Some("note: every partition has a leader again")
        );
        let many: Vec<String> = (0..7).map(|p| format!("t-{p}")).collect();
        assert_eq!(
            name_partitions(&many),
            "partitions t-0, t-1, t-2, t-3, t-4 and 2 more have"
        );
        assert_eq!(name_partitions(&many[..2]), "partitions t-0, t-1 have");
    }
}
