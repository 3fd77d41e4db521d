//! The cluster's metadata history check: every node's applied state is a prefix of the
//! leader's.
//!
//! Owns [`check_prefixes`] (pure: nodes' `(applied index, digest)` pairs in, a
//! [`PrefixReport`] out), [`RaftStatus`] (a node's `GET /v1/cluster/raft` document) and
//! [`fetch_raft_status`] (one bounded HTTP GET). It does not decide when to sample, nor what a
//! digest hashes: each digest is the node's hash chain over the entries it applied up to that
//! index, so two nodes with the same digest at an index applied the same entries up to it.
//!
//! # What counts as a divergence
//!
//! An index for which two different digests were reported, by two nodes or by one node twice
//! (Jepsen's "one offset holding two values", here for the metadata log). Indexes only one
//! node reported are not compared: a lagging follower or a trimmed window is not a fault.
//! A node's pairs must come in strictly increasing index order; any that do not are reported
//! as [`Malformed`].

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde::Deserialize;

/// A node's Raft status as its HTTP API reports it (`GET /v1/cluster/raft`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct RaftStatus {
    pub node_id: u64,
    /// The leader this node knows of, if any.
    #[serde(default)]
    pub leader: Option<u64>,
    pub term: u64,
    pub last_applied: u64,
    /// `(applied index, digest)`, oldest first: a recent window of the node's hash chain.
    pub digests: Vec<(u64, String)>,
}

/// Two different digests for one index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    pub index: u64,
    /// Every `(node, digest)` reported for the index, by node.
    pub digests: Vec<(u64, String)>,
}

/// A node's list breaking the rules of the format.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum Malformed {
    /// `index` came after `previous` in the node's list, which must be strictly increasing.
    NotIncreasing {
        node: u64,
        previous: u64,
        index: u64,
    },
}

/// What [`check_prefixes`] found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PrefixReport {
    /// Indexes reported by at least two nodes (each of them compared).
    pub compared: usize,
    /// Indexes with more than one digest, lowest first.
    pub divergences: Vec<Divergence>,
    pub malformed: Vec<Malformed>,
}

impl PrefixReport {
    /// No divergence and no malformed list: every node's state is a prefix of the others'.
    pub fn is_consistent(&self) -> bool {
        self.divergences.is_empty() && self.malformed.is_empty()
    }
}

impl fmt::Display for PrefixReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{} indexes compared, {} divergent, {} malformed",
            self.compared,
            self.divergences.len(),
            self.malformed.len()
        )?;
        for divergence in &self.divergences {
            write!(f, "  index {}:", divergence.index)?;
            for (node, digest) in &divergence.digests {
                write!(f, " node {node}={digest}")?;
            }
            writeln!(f)?;
        }
        for malformed in &self.malformed {
            writeln!(f, "  {malformed:?}")?;
        }
        Ok(())
    }
}

/// Compares the nodes' `(node id, [(applied index, digest)])` lists.
pub fn check_prefixes<'a, I>(nodes: I) -> PrefixReport
where
    I: IntoIterator<Item = (u64, &'a [(u64, String)])>,
{
    // index -> every (node, digest) reported for it.
    let mut by_index: BTreeMap<u64, Vec<(u64, &'a str)>> = BTreeMap::new();
    let mut malformed = Vec::new();
    for (node, pairs) in nodes {
        let mut previous: Option<u64> = None;
        for (index, digest) in pairs {
            if let Some(previous) = previous.filter(|p| index <= p) {
                malformed.push(Malformed::NotIncreasing {
                    node,
                    previous,
                    index: *index,
                });
            }
            previous = Some(*index);
            by_index.entry(*index).or_default().push((node, digest));
        }
    }
    let mut report = PrefixReport {
        malformed,
        ..PrefixReport::default()
    };
    for (index, mut reports) in by_index {
        let nodes: BTreeSet<u64> = reports.iter().map(|&(node, _)| node).collect();
        if nodes.len() >= 2 {
            report.compared += 1;
        }
        let digests: BTreeSet<&str> = reports.iter().map(|&(_, digest)| digest).collect();
        if digests.len() > 1 {
            reports.sort_unstable();
            report.divergences.push(Divergence {
                index,
                digests: reports
                    .into_iter()
                    .map(|(node, digest)| (node, digest.to_owned()))
                    .collect(),
            });
        }
    }
    report
}

/// [`check_prefixes`] over the statuses fetched from the nodes.
pub fn check_statuses(statuses: &[RaftStatus]) -> PrefixReport {
    check_prefixes(statuses.iter().map(|s| (s.node_id, s.digests.as_slice())))
}

/// Largest response [`fetch_raft_status`] reads: a window of digests is a few hundred KiB.
pub const RESPONSE_BYTES_MAX: u64 = 16 << 20;

/// How long connecting, and then each read or write, may take.
pub const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a status could not be fetched.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum FetchError {
    #[error("GET /v1/cluster/raft from {addr}: {source}")]
    Io {
        addr: SocketAddr,
        #[source]
        source: io::Error,
    },
    #[error("GET /v1/cluster/raft from {addr}: response larger than {RESPONSE_BYTES_MAX} bytes")]
    TooLarge { addr: SocketAddr },
    #[error("GET /v1/cluster/raft from {addr}: not an HTTP response: {head:?}")]
    NotHttp { addr: SocketAddr, head: String },
    #[error("GET /v1/cluster/raft from {addr}: status {status}: {body}")]
    Status {
        addr: SocketAddr,
        status: u16,
        body: String,
    },
    #[error("GET /v1/cluster/raft from {addr}: {source}")]
    Json {
        addr: SocketAddr,
        #[source]
        source: serde_json::Error,
    },
}

/// `GET /v1/cluster/raft` from the node whose HTTP listener is `http`, every step bounded
/// by [`FETCH_TIMEOUT`] and the response by [`RESPONSE_BYTES_MAX`].
///
/// # Errors
/// If the node cannot be reached, answers other than 200, or sends something else than a
/// status document.
pub fn fetch_raft_status(http: SocketAddr) -> Result<RaftStatus, FetchError> {
    let (status, body) = get(http, "/v1/cluster/raft")?;
    if status != 200 {
        return Err(FetchError::Status {
            addr: http,
            status,
            body: String::from_utf8_lossy(&body).into_owned(),
        });
    }
    serde_json::from_slice(&body).map_err(|source| FetchError::Json { addr: http, source })
}

/// One HTTP/1.1 GET on a fresh connection closed by the server after the answer.
fn get(addr: SocketAddr, path: &str) -> Result<(u16, Vec<u8>), FetchError> {
    let io = |source| FetchError::Io { addr, source };
    let mut stream = TcpStream::connect_timeout(&addr, FETCH_TIMEOUT).map_err(io)?;
    stream.set_read_timeout(Some(FETCH_TIMEOUT)).map_err(io)?;
    stream.set_write_timeout(Some(FETCH_TIMEOUT)).map_err(io)?;
    // One write: `write!` on an unbuffered stream would send each piece in its own segment.
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAccept: application/json\r\nConnection: close\r\n\r\n"
    );
    stream.write_all(request.as_bytes()).map_err(io)?;
    let mut response = Vec::new();
    stream
        .take(RESPONSE_BYTES_MAX + 1)
        .read_to_end(&mut response)
        .map_err(io)?;
    if response.len() as u64 > RESPONSE_BYTES_MAX {
        return Err(FetchError::TooLarge { addr });
    }
    parse_response(&response).ok_or_else(|| FetchError::NotHttp {
        addr,
        head: String::from_utf8_lossy(&response[..response.len().min(200)]).into_owned(),
    })
}

/// Status and body of a whole response (a body in chunks is joined).
fn parse_response(response: &[u8]) -> Option<(u16, Vec<u8>)> {
    let split = response.windows(4).position(|w| w == b"\r\n\r\n")?;
    let head = std::str::from_utf8(&response[..split]).ok()?;
    let body = &response[split + 4..];
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()?
        .strip_prefix("HTTP/1.")?
        .split(' ')
        .nth(1)?
        .parse()
        .ok()?;
    let chunked = lines.any(|line| {
        line.to_ascii_lowercase()
            .replace(' ', "")
            .starts_with("transfer-encoding:chunked")
    });
    let body = if chunked {
        dechunk(body)?
    } else {
        body.to_vec()
    };
    Some((status, body))
}

/// The data of a chunked body; `None` if the chunks do not add up.
fn dechunk(mut body: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    loop {
        let line_end = body.windows(2).position(|w| w == b"\r\n")?;
        let size_text = std::str::from_utf8(&body[..line_end]).ok()?;
        let size = usize::from_str_radix(size_text.split(';').next()?.trim(), 16).ok()?;
        body = &body[line_end + 2..];
        if size == 0 {
            return Some(out);
        }
        // Checked: the size came off the network.
        let chunk = body.get(..size)?;
        out.extend_from_slice(chunk);
        body = body.get(size + 2..)?;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(u64, &str)]) -> Vec<(u64, String)> {
        list.iter().map(|&(i, d)| (i, d.to_owned())).collect()
    }

    #[test]
    fn history_prefixes_of_one_chain_are_consistent() {
        let leader = pairs(&[(1, "a"), (2, "b"), (3, "c"), (4, "d")]);
        let follower = pairs(&[(1, "a"), (2, "b")]);
        // A window that starts later (older entries trimmed) and a node with nothing yet.
        let windowed = pairs(&[(3, "c"), (4, "d")]);
        let empty = Vec::new();
        let report = check_prefixes([
            (1, leader.as_slice()),
            (2, follower.as_slice()),
            (3, windowed.as_slice()),
            (4, empty.as_slice()),
        ]);
        assert!(report.is_consistent(), "{report}");
        assert_eq!(report.compared, 4);
    }

    #[test]
    fn history_reports_each_divergent_index_with_every_node() {
        let leader = pairs(&[(1, "a"), (2, "b"), (3, "c")]);
        let agrees = pairs(&[(1, "a"), (2, "b"), (3, "c")]);
        let forked = pairs(&[(1, "a"), (2, "X"), (3, "Y")]);
        let report = check_prefixes([
            (3, forked.as_slice()),
            (1, leader.as_slice()),
            (2, agrees.as_slice()),
        ]);
        assert!(!report.is_consistent());
        assert_eq!(report.compared, 3);
        assert_eq!(
            report.divergences,
            vec![
                Divergence {
                    index: 2,
                    digests: pairs(&[(1, "b"), (2, "b"), (3, "X")]),
                },
                Divergence {
                    index: 3,
                    digests: pairs(&[(1, "c"), (2, "c"), (3, "Y")]),
                },
            ]
        );
        assert!(
            report
                .to_string()
                .contains("index 2: node 1=b node 2=b node 3=X")
        );
    }

    #[test]
    fn history_one_node_reporting_two_digests_for_an_index_diverges() {
        let twice = pairs(&[(1, "a"), (1, "b")]);
        let report = check_prefixes([(1, twice.as_slice())]);
        assert_eq!(report.divergences.len(), 1);
        assert_eq!(report.compared, 0);
        assert_eq!(
            report.malformed,
            vec![Malformed::NotIncreasing {
                node: 1,
                previous: 1,
                index: 1
            }]
        );
    }

    #[test]
    fn history_out_of_order_lists_are_malformed() {
        let list = pairs(&[(5, "e"), (3, "c")]);
        let report = check_prefixes([(7, list.as_slice())]);
        assert!(!report.is_consistent());
        assert!(report.divergences.is_empty());
        assert_eq!(
            report.malformed,
            vec![Malformed::NotIncreasing {
                node: 7,
                previous: 5,
                index: 3
            }]
        );
    }

    #[test]
    fn history_parses_the_status_document() {
        let status: RaftStatus = serde_json::from_str(
            r#"{"node_id":1,"leader":2,"term":5,"last_applied":101,
                "digests":[[100,"ab12"],[101,"cd34"]],"extra":"ignored"}"#,
        )
        .unwrap();
        assert_eq!(
            status,
            RaftStatus {
                node_id: 1,
                leader: Some(2),
                term: 5,
                last_applied: 101,
                digests: pairs(&[(100, "ab12"), (101, "cd34")]),
            }
        );
        let no_leader: RaftStatus = serde_json::from_str(
            r#"{"node_id":3,"leader":null,"term":0,"last_applied":0,"digests":[]}"#,
        )
        .unwrap();
        assert_eq!(no_leader.leader, None);
        assert!(check_statuses(&[status, no_leader]).is_consistent());
    }

    #[test]
    fn history_parses_plain_and_chunked_responses() {
        let plain = b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}";
        assert_eq!(parse_response(plain), Some((200, b"{}".to_vec())));
        let chunked =
            b"HTTP/1.1 503 Service Unavailable\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2;x=y\r\nde\r\n0\r\n\r\n";
        assert_eq!(parse_response(chunked), Some((503, b"abcde".to_vec())));
        // A chunk size larger than what follows, and garbage.
        let short = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\nab";
        assert_eq!(parse_response(short), None);
        assert_eq!(parse_response(b"SSH-2.0\r\n\r\n"), None);
    }

    #[test]
    fn history_fetch_reads_the_status_over_http() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || {
            for body in [
                r#"{"node_id":2,"leader":2,"term":1,"last_applied":1,"digests":[[1,"aa"]]}"#,
                "not json",
            ] {
                let (mut stream, _) = listener.accept().unwrap();
                let mut request = Vec::new();
                let mut byte = [0_u8; 1];
                while !request.ends_with(b"\r\n\r\n") {
                    stream.read_exact(&mut byte).unwrap();
                    request.push(byte[0]);
                }
                assert!(request.starts_with(b"GET /v1/cluster/raft HTTP/1.1\r\n"));
                write!(
                    stream,
                    "HTTP/1.1 200 OK\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                )
                .unwrap();
            }
        });
        let status = fetch_raft_status(addr).unwrap();
        assert_eq!(status.node_id, 2);
        assert_eq!(status.digests, pairs(&[(1, "aa")]));
        assert!(matches!(
            fetch_raft_status(addr),
            Err(FetchError::Json { .. })
        ));
        server.join().unwrap();
        // Nobody listens any more.
        assert!(matches!(
            fetch_raft_status(addr),
            Err(FetchError::Io { .. })
        ));
    }
}
