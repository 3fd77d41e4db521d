//! The consumer protocol's subscription and assignment bytes: round trips at every version,
//! bytes laid out by hand as other clients write them, and hostile input (truncation, counts
//! and lengths larger than the bytes, negative versions), which must be errors, never panics.

use bytes::Bytes;
use proptest::prelude::*;
use weir_protocol::consumer_protocol::{
    Assignment, ConsumerProtocolError, Subscription, TopicPartitions, VERSION_MAX,
    decode_assignment, decode_subscription, encode_assignment, encode_subscription,
};

/// Assignment bytes laid out field by field, as the CLI's decoder was tested against (version
/// 1, null user data).
fn hand_assignment(topics: &[(&str, &[i32])]) -> Vec<u8> {
    let mut b = vec![0, 1];
    b.extend(i32::try_from(topics.len()).expect("few").to_be_bytes());
    for (t, ps) in topics {
        b.extend(i16::try_from(t.len()).expect("short").to_be_bytes());
        b.extend(t.as_bytes());
        b.extend(i32::try_from(ps.len()).expect("few").to_be_bytes());
        for p in *ps {
            b.extend(p.to_be_bytes());
        }
    }
    b.extend((-1i32).to_be_bytes()); // null user data
    b
}

fn tp(topic: &str, partitions: &[i32]) -> TopicPartitions {
    TopicPartitions::new(topic, partitions.to_vec())
}

fn full_subscription() -> Subscription {
    Subscription {
        topics: vec!["orders".to_owned(), "events".to_owned()],
        user_data: Some(Bytes::from_static(b"sticky")),
        owned_partitions: vec![tp("orders", &[0, 3])],
        generation_id: 7,
        rack_id: Some("eu-1a".to_owned()),
    }
}

#[test]
fn an_assignment_round_trips() {
    // Moved from cli/src/assignment.rs with its assertions.
    let bytes = hand_assignment(&[("orders", &[0, 2]), ("events", &[])]);
    assert_eq!(
        decode_assignment(&bytes).unwrap().partitions,
        vec![tp("orders", &[0, 2]), tp("events", &[])]
    );
    assert_eq!(decode_assignment(&[]).unwrap(), Assignment::default());
}

#[test]
fn hostile_counts_and_truncation_are_refused_without_allocating() {
    // Moved from cli/src/assignment.rs with its assertions.
    let mut bytes = vec![0, 1];
    bytes.extend(i32::MAX.to_be_bytes());
    assert!(decode_assignment(&bytes).is_err());
    let full = hand_assignment(&[("orders", &[0, 2])]);
    for cut in 1..full.len() - 4 {
        assert!(decode_assignment(&full[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn the_client_s_encoding_is_the_java_layout() {
    // Version 0 as the Java client writes it: version, topics, null user data.
    let bytes = encode_subscription(&Subscription::new(vec!["ab".to_owned()]), 0).unwrap();
    assert_eq!(
        &bytes[..],
        [0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0xff, 0xff, 0xff, 0xff]
    );
    let assignment = Assignment {
        partitions: vec![tp("ab", &[5])],
        user_data: None,
    };
    let bytes = encode_assignment(&assignment, 0).unwrap();
    assert_eq!(
        &bytes[..],
        [
            0, 0, 0, 0, 0, 1, 0, 2, b'a', b'b', 0, 0, 0, 1, 0, 0, 0, 5, 0xff, 0xff, 0xff, 0xff
        ]
    );
    assert_eq!(&bytes[2..], &hand_assignment(&[("ab", &[5])])[2..]);
}

#[test]
fn every_version_carries_its_fields() {
    let full = full_subscription();
    for version in 0..=VERSION_MAX {
        let decoded = decode_subscription(&encode_subscription(&full, version).unwrap()).unwrap();
        assert_eq!(decoded, at_version(&full, version), "v{version}");
    }
    assert_eq!(
        decode_subscription(&encode_subscription(&full, 3).unwrap()).unwrap(),
        full
    );
}

#[test]
fn newer_versions_are_read_as_the_newest_known_and_trailing_fields_ignored() {
    let full = full_subscription();
    let mut bytes = encode_subscription(&full, 3).unwrap().to_vec();
    bytes[..2].copy_from_slice(&9i16.to_be_bytes());
    bytes.extend_from_slice(b"a field from version 9");
    assert_eq!(decode_subscription(&bytes).unwrap(), full);

    let assignment = Assignment {
        partitions: vec![tp("t", &[1])],
        user_data: Some(Bytes::from_static(b"u")),
    };
    let mut bytes = encode_assignment(&assignment, 0).unwrap().to_vec();
    bytes[..2].copy_from_slice(&i16::MAX.to_be_bytes());
    bytes.push(0x42);
    assert_eq!(decode_assignment(&bytes).unwrap(), assignment);
}

#[test]
fn bad_versions_are_errors() {
    for bytes in [
        &[0xff, 0xff, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff][..],
        &[0x80, 0],
    ] {
        assert!(matches!(
            decode_subscription(bytes),
            Err(ConsumerProtocolError::NegativeVersion { .. })
        ));
        assert!(matches!(
            decode_assignment(bytes),
            Err(ConsumerProtocolError::NegativeVersion { .. })
        ));
    }
    for bytes in [&[][..], &[0]] {
        assert!(matches!(
            decode_subscription(bytes),
            Err(ConsumerProtocolError::MissingVersion { .. })
        ));
    }
    assert!(matches!(
        decode_assignment(&[0]),
        Err(ConsumerProtocolError::MissingVersion { len: 1, .. })
    ));
    for version in [-1, VERSION_MAX + 1] {
        assert!(matches!(
            encode_subscription(&Subscription::default(), version),
            Err(ConsumerProtocolError::UnsupportedVersion { .. })
        ));
        assert!(matches!(
            encode_assignment(&Assignment::default(), version),
            Err(ConsumerProtocolError::UnsupportedVersion { .. })
        ));
    }
}

#[test]
fn every_truncation_of_a_full_subscription_is_an_error() {
    for version in 0..=VERSION_MAX {
        let bytes = encode_subscription(&full_subscription(), version).unwrap();
        for cut in 0..bytes.len() {
            assert!(
                decode_subscription(&bytes[..cut]).is_err(),
                "v{version} cut at {cut}"
            );
        }
    }
    let assignment = Assignment {
        partitions: vec![tp("orders", &[0, 2]), tp("events", &[1])],
        user_data: Some(Bytes::from_static(b"data")),
    };
    let bytes = encode_assignment(&assignment, 0).unwrap();
    for cut in 1..bytes.len() {
        assert!(decode_assignment(&bytes[..cut]).is_err(), "cut at {cut}");
    }
}

#[test]
fn counts_and_lengths_beyond_the_bytes_are_errors() {
    let huge_i32 = [i32::MAX, 1 << 20, -2];
    for n in huge_i32 {
        // Topic count.
        let mut b = vec![0, 0];
        b.extend(n.to_be_bytes());
        b.extend([0; 16]);
        assert!(decode_subscription(&b).is_err(), "{n} topics");
        assert!(decode_assignment(&b).is_err(), "{n} topics");
        // Partition count of the first topic.
        let mut b = vec![0, 0, 0, 0, 0, 1, 0, 1, b't'];
        b.extend(n.to_be_bytes());
        b.extend([0; 16]);
        assert!(decode_assignment(&b).is_err(), "{n} partitions");
        // User data length.
        let mut b = vec![0, 0, 0, 0, 0, 0];
        b.extend(n.to_be_bytes());
        b.extend([0; 16]);
        assert!(decode_subscription(&b).is_err(), "{n} bytes of user data");
        assert!(decode_assignment(&b).is_err(), "{n} bytes of user data");
    }
    // A topic name longer than the bytes, a negative (null) topic name, a name that is not
    // UTF-8.
    for name in [&[0x7f, 0xff, b'a'][..], &[0xff, 0xff], &[0, 2, 0xc3, 0x28]] {
        let mut b = vec![0, 0, 0, 0, 0, 1];
        b.extend(name);
        b.extend([0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff]);
        assert!(decode_subscription(&b).is_err(), "name {name:?}");
        assert!(decode_assignment(&b).is_err(), "name {name:?}");
    }
    // Owned partitions (v1) and rack (v3) claiming more than is there.
    let mut b = vec![0, 3, 0, 0, 0, 0, 0xff, 0xff, 0xff, 0xff];
    b.extend(i32::MAX.to_be_bytes());
    assert!(decode_subscription(&b).is_err());
    let mut b = encode_subscription(&Subscription::default(), 2)
        .unwrap()
        .to_vec();
    b[..2].copy_from_slice(&3i16.to_be_bytes());
    b.extend([0x7f, 0xff, b'r']);
    assert!(decode_subscription(&b).is_err());
}

fn at_version(full: &Subscription, version: i16) -> Subscription {
    let default = Subscription::default();
    Subscription {
        topics: full.topics.clone(),
        user_data: full.user_data.clone(),
        owned_partitions: if version >= 1 {
            full.owned_partitions.clone()
        } else {
            default.owned_partitions
        },
        generation_id: if version >= 2 {
            full.generation_id
        } else {
            default.generation_id
        },
        rack_id: if version >= 3 {
            full.rack_id.clone()
        } else {
            default.rack_id
        },
    }
}

fn topic_partitions() -> impl Strategy<Value = TopicPartitions> {
    (".{0,12}", prop::collection::vec(any::<i32>(), 0..6))
        .prop_map(|(topic, partitions)| TopicPartitions { topic, partitions })
}

fn user_data() -> impl Strategy<Value = Option<Bytes>> {
    prop::option::of(prop::collection::vec(any::<u8>(), 0..24).prop_map(Bytes::from))
}

fn subscription() -> impl Strategy<Value = Subscription> {
    (
        prop::collection::vec(".{0,12}", 0..5),
        user_data(),
        prop::collection::vec(topic_partitions(), 0..4),
        any::<i32>(),
        prop::option::of(".{0,8}"),
    )
        .prop_map(
            |(topics, user_data, owned_partitions, generation_id, rack_id)| Subscription {
                topics,
                user_data,
                owned_partitions,
                generation_id,
                rack_id,
            },
        )
}

fn assignment() -> impl Strategy<Value = Assignment> {
    (prop::collection::vec(topic_partitions(), 0..5), user_data()).prop_map(
        |(partitions, user_data)| Assignment {
            partitions,
            user_data,
        },
    )
}

proptest! {
    #[test]
    fn subscriptions_round_trip(s in subscription(), version in 0..=VERSION_MAX) {
        let bytes = encode_subscription(&s, version).unwrap();
        prop_assert_eq!(decode_subscription(&bytes).unwrap(), at_version(&s, version));
    }

    #[test]
    fn assignments_round_trip(a in assignment(), version in 0..=VERSION_MAX) {
        let bytes = encode_assignment(&a, version).unwrap();
        prop_assert_eq!(decode_assignment(&bytes).unwrap(), a);
    }

    #[test]
    fn arbitrary_bytes_decode_or_fail_and_what_decodes_re_encodes(
        bytes in prop::collection::vec(any::<u8>(), 0..96),
        version in 0..=VERSION_MAX,
    ) {
        // Give the body a plausible version half of the time, so that it gets past it.
        let mut input = bytes.clone();
        if input.len() >= 2 && input[0] & 1 == 0 {
            input[..2].copy_from_slice(&version.to_be_bytes());
        }
        if let Ok(s) = decode_subscription(&input) {
            let again = encode_subscription(&s, VERSION_MAX).unwrap();
            prop_assert_eq!(decode_subscription(&again).unwrap(), s);
        }
        if let Ok(a) = decode_assignment(&input) {
            let again = encode_assignment(&a, VERSION_MAX).unwrap();
            prop_assert_eq!(decode_assignment(&again).unwrap(), a);
        }
    }
}
