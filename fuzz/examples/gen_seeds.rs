//! Writes the seed inputs of every fuzz target to `fuzz/seeds/<target>/`, so that the fuzzers
//! start from valid structure: framed streams, requests for every supported API and version,
//! record batches from the builder.
//!
//! ```text
//! cargo run --manifest-path fuzz/Cargo.toml --example gen_seeds
//! ```
//!
//! Deterministic: running it again rewrites the same files.

use std::fs;
use std::path::{Path, PathBuf};

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::api_versions_response::ApiVersion;
use kafka_protocol::messages::create_topics_request::{CreatableTopic, CreatableTopicConfig};
use kafka_protocol::messages::describe_configs_request::DescribeConfigsResource;
use kafka_protocol::messages::fetch_request::{FetchPartition, FetchTopic};
use kafka_protocol::messages::join_group_request::JoinGroupRequestProtocol;
use kafka_protocol::messages::list_offsets_request::{ListOffsetsPartition, ListOffsetsTopic};
use kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use kafka_protocol::messages::metadata_response::{
    MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use kafka_protocol::messages::offset_fetch_request::OffsetFetchRequestTopic;
use kafka_protocol::messages::produce_request::{PartitionProduceData, TopicProduceData};
use kafka_protocol::messages::sync_group_request::SyncGroupRequestAssignment;
use kafka_protocol::messages::{
    AlterConfigsRequest, CreatePartitionsRequest, IncrementalAlterConfigsRequest,
};
use kafka_protocol::messages::{
    ApiKey as WireApiKey, ApiVersionsRequest, ApiVersionsResponse, BrokerId, CreateTopicsRequest,
    DeleteGroupsRequest, DeleteTopicsRequest, DescribeConfigsRequest, DescribeGroupsRequest,
    FetchRequest, FindCoordinatorRequest, GroupId, HeartbeatRequest, InitProducerIdRequest,
    JoinGroupRequest, LeaveGroupRequest, ListGroupsRequest, ListOffsetsRequest, MetadataRequest,
    MetadataResponse, OffsetCommitRequest, OffsetFetchRequest, ProduceRequest, RequestKind,
    ResponseKind, SyncGroupRequest, TopicName,
};
use kafka_protocol::protocol::StrBytes;
use weir_protocol::api::{ApiKey, SUPPORTED_APIS, supported_range};
use weir_protocol::compression::{compress, decompress};
use weir_protocol::message::{decode_request, encode_request};
use weir_protocol::record_batch::{
    BatchBuilder, Compression, RecordInput, check_records, field, validate_batch,
};

fn s(text: &'static str) -> StrBytes {
    StrBytes::from_static_str(text)
}

fn topic(name: &'static str) -> TopicName {
    TopicName(s(name))
}

fn group(name: &'static str) -> GroupId {
    GroupId(s(name))
}

/// A few uncompressed batches from the builder.
fn batches() -> Vec<(&'static str, Bytes)> {
    let mut out = Vec::new();

    let mut one = BatchBuilder::new();
    one.push(RecordInput {
        key: Some(b"key"),
        value: Some(b"value"),
        headers: &[],
        timestamp: 1_700_000_000_000,
    });
    out.push(("one-record", one.build().expect("batch")));

    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"trace", Some(b"abc")), (b"null", None)];
    let mut many = BatchBuilder::new().with_producer(42, 3, 100);
    for i in 0..4i64 {
        many.push(RecordInput {
            key: (i % 2 == 0).then_some(&b"k"[..]),
            value: (i != 2).then_some(&b"payload"[..]),
            headers: if i == 1 { headers } else { &[] },
            timestamp: 1_700_000_000_000 + i * 1_000,
        });
    }
    out.push(("idempotent-4-records", many.build().expect("batch")));

    let mut wide = BatchBuilder::new().with_partition_leader_epoch(5);
    for ts in [i64::MAX, i64::MIN, 0] {
        wide.push(RecordInput {
            key: None,
            value: None,
            headers: &[(b"", Some(b""))],
            timestamp: ts,
        });
    }
    out.push(("extreme-timestamps", wide.build().expect("batch")));
    out
}

/// A request body for `key` with some content in it.
fn populated(key: ApiKey, version: i16, batch: &Bytes) -> RequestKind {
    match key {
        ApiKey::Produce => ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5_000)
            .with_topic_data(vec![
                TopicProduceData::default()
                    .with_name(topic("events"))
                    .with_partition_data(vec![
                        PartitionProduceData::default()
                            .with_index(0)
                            .with_records(Some(batch.clone())),
                    ]),
            ])
            .into(),
        ApiKey::Fetch => FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(500)
            .with_min_bytes(1)
            .with_max_bytes(50 << 20)
            .with_topics(vec![
                FetchTopic::default()
                    .with_topic(topic("events"))
                    .with_partitions(vec![
                        FetchPartition::default()
                            .with_partition(0)
                            .with_fetch_offset(17)
                            .with_partition_max_bytes(1 << 20),
                    ]),
            ])
            .into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![
                ListOffsetsTopic::default()
                    .with_name(topic("events"))
                    .with_partitions(vec![
                        ListOffsetsPartition::default()
                            .with_partition_index(0)
                            .with_timestamp(-1),
                    ]),
            ])
            .into(),
        ApiKey::Metadata => MetadataRequest::default()
            .with_topics(Some(vec![
                MetadataRequestTopic::default().with_name(Some(topic("events"))),
            ]))
            .into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default()
            .with_group_id(group("g"))
            .with_generation_id_or_member_epoch(1)
            .with_member_id(s("member-1"))
            .with_topics(vec![
                OffsetCommitRequestTopic::default()
                    .with_name(topic("events"))
                    .with_partitions(vec![
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(0)
                            .with_committed_offset(10)
                            .with_committed_metadata(Some(s("meta"))),
                    ]),
            ])
            .into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::default()
            .with_group_id(group("g"))
            .with_topics(Some(vec![
                OffsetFetchRequestTopic::default()
                    .with_name(topic("events"))
                    .with_partition_indexes(vec![0, 1]),
            ]))
            .into(),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default().with_key(s("g")).into(),
        ApiKey::JoinGroup => JoinGroupRequest::default()
            .with_group_id(group("g"))
            .with_session_timeout_ms(10_000)
            .with_rebalance_timeout_ms(30_000)
            .with_protocol_type(s("consumer"))
            .with_protocols(vec![
                JoinGroupRequestProtocol::default()
                    .with_name(s("range"))
                    .with_metadata(Bytes::from_static(b"\0\x01\0\0\0\x01\0\x06events")),
            ])
            .into(),
        ApiKey::Heartbeat => HeartbeatRequest::default()
            .with_group_id(group("g"))
            .with_generation_id(1)
            .with_member_id(s("member-1"))
            .into(),
        ApiKey::LeaveGroup if version < 3 => LeaveGroupRequest::default()
            .with_group_id(group("g"))
            .with_member_id(s("member-1"))
            .into(),
        ApiKey::SyncGroup => SyncGroupRequest::default()
            .with_group_id(group("g"))
            .with_generation_id(1)
            .with_member_id(s("member-1"))
            .with_assignments(vec![
                SyncGroupRequestAssignment::default()
                    .with_member_id(s("member-1"))
                    .with_assignment(Bytes::from_static(b"\0\x01\0\0\0\x01")),
            ])
            .into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default()
            .with_groups(vec![group("g")])
            .into(),
        ApiKey::ApiVersions if version >= 3 => ApiVersionsRequest::default()
            .with_client_software_name(s("weir-fuzz"))
            .with_client_software_version(s("0.0.0"))
            .into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topics(vec![
                CreatableTopic::default()
                    .with_name(topic("events"))
                    .with_num_partitions(3)
                    .with_replication_factor(1)
                    .with_configs(vec![
                        CreatableTopicConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("60000"))),
                    ]),
            ])
            .into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default()
            .with_timeout_ms(5_000)
            .with_topic_names(vec![topic("events")])
            .into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default()
            .with_transaction_timeout_ms(60_000)
            .into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default()
            .with_resources(vec![
                DescribeConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("events"))
                    .with_configuration_keys(None),
            ])
            .into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default()
            .with_groups_names(vec![group("g")])
            .into(),
        ApiKey::AlterConfigs => AlterConfigsRequest::default()
            .with_resources(vec![
                kafka_protocol::messages::alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("events"))
                    .with_configs(vec![
                        kafka_protocol::messages::alter_configs_request::AlterableConfig::default()
                            .with_name(s("retention.ms"))
                            .with_value(Some(s("1000"))),
                    ]),
            ])
            .into(),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default()
            .with_resources(vec![
                kafka_protocol::messages::incremental_alter_configs_request::AlterConfigsResource::default()
                    .with_resource_type(2)
                    .with_resource_name(s("events"))
                    .with_configs(vec![
                        kafka_protocol::messages::incremental_alter_configs_request::AlterableConfig::default()
                            .with_name(s("cleanup.policy"))
                            .with_config_operation(2)
                            .with_value(Some(s("compact"))),
                    ]),
            ])
            .into(),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
        ApiKey::ListGroups => ListGroupsRequest::default().into(),
        ApiKey::LeaveGroup => LeaveGroupRequest::default()
            .with_group_id(group("g"))
            .into(),
        ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
    }
}

fn write(dir: &Path, name: &str, bytes: &[u8]) {
    fs::write(dir.join(name), bytes).unwrap_or_else(|err| panic!("writing {name}: {err}"));
}

fn dir(root: &Path, target: &str) -> PathBuf {
    let dir = root.join(target);
    fs::create_dir_all(&dir).expect("create the seed directory");
    dir
}

fn framed(payloads: &[&[u8]]) -> Vec<u8> {
    let mut out = Vec::new();
    for payload in payloads {
        out.extend_from_slice(&(payload.len() as i32).to_be_bytes());
        out.extend_from_slice(payload);
    }
    out
}

fn main() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("seeds");
    let batches = batches();

    // record_batch: the batches as built, and as the broker stores them.
    let rb = dir(&root, "record_batch");
    let mut segment = Vec::new();
    for (i, (name, batch)) in batches.iter().enumerate() {
        let header = validate_batch(batch).expect("a valid batch");
        check_records(batch, &header).expect("valid records");
        write(&rb, &format!("{name}.bin"), batch);
        let mut stored = batch.to_vec();
        weir_protocol::record_batch::set_base_offset(&mut stored, 100 * i as i64);
        weir_protocol::record_batch::set_partition_leader_epoch(&mut stored, 0);
        segment.extend_from_slice(&stored);
    }
    write(&rb, "segment-3-batches.bin", &segment);
    // A gzip batch header (the broker checks header and CRC only): the first batch with the
    // codec bits set and the CRC recomputed.
    let mut gzip = batches[0].1.to_vec();
    gzip[field::ATTRIBUTES + 1] |= 1;
    let crc = crc32c::crc32c(&gzip[field::ATTRIBUTES..]);
    gzip[field::CRC..field::CRC + 4].copy_from_slice(&crc.to_be_bytes());
    write(&rb, "gzip-flagged.bin", &gzip);

    // request: every supported API at every supported version, mostly with content.
    let rq = dir(&root, "request");
    let cd = dir(&root, "codec");
    let mut requests = 0;
    for &(key, range) in SUPPORTED_APIS {
        for version in range.min..=range.max {
            let body = populated(key, version, &batches[1].1);
            let (body, what) = match encode_request(key, version, 7, Some("weir-fuzz"), &body) {
                Ok(frame) => (frame, "populated"),
                Err(err) => {
                    // A field the version cannot express: fall back to the default body.
                    eprintln!("{key} v{version}: {err}; using the default body");
                    let default = populated_default(key);
                    let frame = encode_request(key, version, 7, Some("weir-fuzz"), &default)
                        .expect("a default body encodes");
                    (frame, "default")
                }
            };
            let payload = Bytes::copy_from_slice(&body[4..]);
            if let Err(err) = decode_request(payload.clone(), supported_range) {
                panic!("{key} v{version} seed does not decode: {err}");
            }
            write(
                &rq,
                &format!("{}-v{version}-{what}.bin", key.name()),
                &payload,
            );
            requests += 1;

            // codec: key, version, direction 0 (request), then the body alone.
            let body = populated(key, version, &batches[1].1);
            let mut encoded = BytesMut::new();
            if body.encode(&mut encoded, version).is_ok() {
                let mut input = Vec::new();
                input.extend_from_slice(&wire_index(key).to_be_bytes());
                input.extend_from_slice(&version_index(key, version).to_be_bytes());
                input.push(0);
                input.extend_from_slice(&encoded);
                write(&cd, &format!("req-{}-v{version}.bin", key.name()), &input);
            }
        }
    }

    // Regression: an unknown tagged field with tag u32::MAX (vendor/kafka-protocol/WEIR-PATCH.md).
    write(
        &rq,
        "regression-tag-above-i32-max.bin",
        b"\0\x12\0\x03\0\0\0\x07\0\x01c\0\x02a\x021\x01\xff\xff\xff\xff\x0f\x01\x2b",
    );

    // codec: a few responses, as the client would receive them.
    let responses: [(ApiKey, i16, ResponseKind); 3] = [
        (
            ApiKey::ApiVersions,
            3,
            ApiVersionsResponse::default()
                .with_api_keys(
                    SUPPORTED_APIS
                        .iter()
                        .map(|&(key, range)| {
                            ApiVersion::default()
                                .with_api_key(key.code())
                                .with_min_version(range.min)
                                .with_max_version(range.max)
                        })
                        .collect(),
                )
                .into(),
        ),
        (
            ApiKey::Metadata,
            6,
            MetadataResponse::default()
                .with_brokers(vec![
                    MetadataResponseBroker::default()
                        .with_node_id(BrokerId(0))
                        .with_host(s("localhost"))
                        .with_port(9092),
                ])
                .with_cluster_id(Some(s("weir")))
                .with_controller_id(BrokerId(0))
                .with_topics(vec![
                    MetadataResponseTopic::default()
                        .with_name(Some(topic("events")))
                        .with_partitions(vec![
                            MetadataResponsePartition::default()
                                .with_partition_index(0)
                                .with_leader_id(BrokerId(0))
                                .with_replica_nodes(vec![BrokerId(0)])
                                .with_isr_nodes(vec![BrokerId(0)]),
                        ]),
                ])
                .into(),
        ),
        (
            ApiKey::Produce,
            7,
            kafka_protocol::messages::ProduceResponse::default().into(),
        ),
    ];
    for (key, version, body) in responses {
        let mut encoded = BytesMut::new();
        body.encode(&mut encoded, version)
            .expect("response encodes");
        let mut input = Vec::new();
        input.extend_from_slice(&wire_index(key).to_be_bytes());
        input.extend_from_slice(&version_index(key, version).to_be_bytes());
        input.push(1);
        input.extend_from_slice(&encoded);
        write(&cd, &format!("resp-{}-v{version}.bin", key.name()), &input);
    }

    // frame: byte 0 the maximum, byte 1 the chunk seed, then the stream.
    let fr = dir(&root, "frame");
    let stream = framed(&[b"hello", b"", &[0xab; 40], b"x"]);
    for (name, max, seed) in [("fits-max-64", 64u8, 1u8), ("fits-max-40", 40, 77)] {
        let mut input = vec![max, seed];
        input.extend_from_slice(&stream);
        write(&fr, &format!("{name}.bin"), &input);
    }
    let mut partial = vec![255, 3];
    partial.extend_from_slice(&framed(&[b"complete", &[1; 100]])[..60]);
    write(&fr, "ends-inside-a-frame.bin", &partial);
    let mut too_large = vec![16, 9];
    too_large.extend_from_slice(&framed(&[b"ok", &[2; 17]]));
    write(&fr, "too-large.bin", &too_large);
    let mut negative = vec![32, 200];
    negative.extend_from_slice(&framed(&[b"ok"]));
    negative.extend_from_slice(&(-1i32).to_be_bytes());
    write(&fr, "negative.bin", &negative);

    let decompress_seeds = decompress_seeds(&root, &batches[1].1);

    println!(
        "wrote {} record_batch, {requests} request, codec, 5 frame and {decompress_seeds} \
         decompress seeds under {}",
        batches.len() + 2,
        root.display()
    );
}

/// The default body for `key`, for versions the populated one does not fit.
fn populated_default(key: ApiKey) -> RequestKind {
    match key {
        ApiKey::Produce => ProduceRequest::default().into(),
        ApiKey::Fetch => FetchRequest::default().into(),
        ApiKey::ListOffsets => ListOffsetsRequest::default().into(),
        ApiKey::Metadata => MetadataRequest::default().into(),
        ApiKey::OffsetCommit => OffsetCommitRequest::default().into(),
        ApiKey::OffsetFetch => OffsetFetchRequest::default().into(),
        ApiKey::FindCoordinator => FindCoordinatorRequest::default().into(),
        ApiKey::JoinGroup => JoinGroupRequest::default().into(),
        ApiKey::Heartbeat => HeartbeatRequest::default().into(),
        ApiKey::LeaveGroup => LeaveGroupRequest::default().into(),
        ApiKey::SyncGroup => SyncGroupRequest::default().into(),
        ApiKey::DescribeGroups => DescribeGroupsRequest::default().into(),
        ApiKey::ListGroups => ListGroupsRequest::default().into(),
        ApiKey::ApiVersions => ApiVersionsRequest::default().into(),
        ApiKey::CreateTopics => CreateTopicsRequest::default().into(),
        ApiKey::DeleteTopics => DeleteTopicsRequest::default().into(),
        ApiKey::InitProducerId => InitProducerIdRequest::default().into(),
        ApiKey::DescribeConfigs => DescribeConfigsRequest::default().into(),
        ApiKey::DeleteGroups => DeleteGroupsRequest::default().into(),
        ApiKey::AlterConfigs => AlterConfigsRequest::default().into(),
        ApiKey::IncrementalAlterConfigs => IncrementalAlterConfigsRequest::default().into(),
        ApiKey::CreatePartitions => CreatePartitionsRequest::default().into(),
    }
}

/// The codec target picks its key as `keys[u16 % keys.len()]`: the index of `key` there.
fn wire_index(key: ApiKey) -> u16 {
    let wire = WireApiKey::try_from(key.code()).expect("a key the codec knows");
    WireApiKey::iter().position(|k| k == wire).expect("listed") as u16
}

/// The codec target picks `min + u16 % span`: the offset of `version` from the minimum.
fn version_index(key: ApiKey, version: i16) -> u16 {
    let wire = WireApiKey::try_from(key.code()).expect("a key the codec knows");
    (version - wire.valid_versions().min) as u16
}

/// decompress: byte 0 the codec (its index in the target's list), bytes 1-2 the limit, then
/// the data. Each codec gets a batch's records section compressed (limit large enough), a
/// zeros bomb (limit too small) and its empty input; Snappy also a raw block (librdkafka's
/// default). Returns the number of seeds written.
fn decompress_seeds(root: &Path, batch: &[u8]) -> usize {
    const CODECS: [(Compression, &str); 5] = [
        (Compression::None, "none"),
        (Compression::Gzip, "gzip"),
        (Compression::Snappy, "snappy"),
        (Compression::Lz4, "lz4"),
        (Compression::Zstd, "zstd"),
    ];
    let dz = dir(root, "decompress");
    let records = &batch[weir_protocol::record_batch::HEADER_LEN..];
    let zeros = vec![0u8; 64 * 1024];
    let mut written = 0;
    let mut seed = |name: &str, selector: usize, limit: u16, data: &[u8]| {
        let mut input = vec![selector as u8];
        input.extend_from_slice(&limit.to_be_bytes());
        input.extend_from_slice(data);
        write(&dz, &format!("{name}.bin"), &input);
        written += 1;
    };
    for (selector, (codec, name)) in CODECS.into_iter().enumerate() {
        let packed = compress(codec, records).expect("compress the records");
        assert_eq!(
            decompress(codec, &packed, records.len()).expect("decompress the records"),
            records
        );
        seed(&format!("{name}-records"), selector, 4096, &packed);
        let bomb = compress(codec, &zeros).expect("compress zeros");
        if bomb.len() < 4096 {
            seed(&format!("{name}-bomb"), selector, 1024, &bomb);
        }
        seed(&format!("{name}-empty"), selector, 16, &[]);
    }
    let raw = snap::raw::Encoder::new()
        .compress_vec(records)
        .expect("a raw snappy block");
    seed("snappy-raw-block", 2, 4096, &raw);
    // A 10-byte zstd frame whose header asks for a 128 MiB window (window descriptor 0x88,
    // no content size) around one raw 1-byte block: zstd allocates the window (134,611,008
    // bytes) before the first byte comes out, whatever the limit (docs/fuzzing.md).
    seed(
        "zstd-window-128mib",
        4,
        16,
        &[0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x88, 0x09, 0x00, 0x00, 0x41],
    );
    written
}
