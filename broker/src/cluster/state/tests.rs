use super::*;

fn registered(ids: &[NodeId]) -> MetadataState {
    let mut state = MetadataState::default();
    for id in ids {
        assert_eq!(
            state.apply(&Command::RegisterBroker {
                node: *id,
                host: "127.0.0.1".into(),
                port: 9000 + u16::try_from(*id).unwrap(),
            }),
            Reply::Done
        );
    }
    state
}

fn create(name: &str, assignment: Vec<Vec<NodeId>>) -> Command {
    Command::CreateTopic {
        name: name.into(),
        id: Uuid::from_u128(7),
        assignment,
        configs: BTreeMap::new(),
    }
}

#[test]
fn the_first_cluster_id_stays() {
    let mut state = MetadataState::default();
    state.apply(&Command::InitCluster {
        cluster_id: "a".into(),
    });
    state.apply(&Command::InitCluster {
        cluster_id: "b".into(),
    });
    assert_eq!(state.cluster_id.as_deref(), Some("a"));
}

#[test]
fn topics_are_created_once_and_deleted_with_their_id_remembered() {
    let mut state = registered(&[1, 2]);
    assert_eq!(
        state.apply(&create("t", vec![vec![1], vec![2]])),
        Reply::Done
    );
    assert_eq!(
        state.apply(&create("t", vec![vec![1]])),
        Reply::Refused(Refusal::TopicExists("t".into()))
    );
    assert_eq!(
        state.apply(&create("u", vec![vec![9]])),
        Reply::Refused(Refusal::UnknownBroker(9))
    );
    assert_eq!(
        state.apply(&Command::DeleteTopic { name: "t".into() }),
        Reply::Done
    );
    assert_eq!(state.deleted, VecDeque::from([Uuid::from_u128(7)]));
    assert_eq!(
        state.apply(&Command::DeleteTopic { name: "t".into() }),
        Reply::Refused(Refusal::UnknownTopic("t".into()))
    );
}

#[test]
fn a_fenced_broker_leads_nothing_until_it_registers_again() {
    let mut state = registered(&[1, 2]);
    state.apply(&create("t", vec![vec![1], vec![2]]));
    let leaders = |s: &MetadataState| {
        s.topics["t"]
            .partitions
            .iter()
            .map(|p| s.leader(p))
            .collect::<Vec<_>>()
    };
    assert_eq!(leaders(&state), vec![Some(1), Some(2)]);
    state.apply(&Command::FenceBroker { node: 2 });
    assert_eq!(leaders(&state), vec![Some(1), None]);
    assert_eq!(state.live_brokers().count(), 1);
    state.apply(&Command::RegisterBroker {
        node: 2,
        host: "h".into(),
        port: 1,
    });
    assert_eq!(leaders(&state), vec![Some(1), Some(2)]);
}

#[test]
fn partitions_are_only_added() {
    let mut state = registered(&[1]);
    state.apply(&create("t", vec![vec![1]]));
    assert!(matches!(
        state.apply(&Command::CreatePartitions {
            name: "t".into(),
            assignment: vec![]
        }),
        Reply::Refused(Refusal::BadPartitionCount { .. })
    ));
    state.apply(&Command::CreatePartitions {
        name: "t".into(),
        assignment: vec![vec![1], vec![1]],
    });
    assert_eq!(state.topics["t"].partitions.len(), 3);
}

#[test]
fn producer_id_blocks_never_overlap() {
    let mut state = registered(&[1, 2]);
    let a = state.apply(&Command::AllocateProducerIds {
        node: 1,
        count: 1000,
    });
    let b = state.apply(&Command::AllocateProducerIds {
        node: 2,
        count: 1000,
    });
    assert_eq!(
        a,
        Reply::ProducerIds {
            start: 0,
            count: 1000
        }
    );
    assert_eq!(
        b,
        Reply::ProducerIds {
            start: 1000,
            count: 1000
        }
    );
}

#[test]
fn coordinators_are_stable_and_spread() {
    let state = registered(&[1, 2, 3]);
    assert_eq!(state.coordinator("g"), state.coordinator("g"));
    let mut seen = std::collections::BTreeSet::new();
    for g in 0..100 {
        seen.insert(state.coordinator(&format!("group-{g}")).unwrap());
    }
    assert_eq!(seen.len(), 3, "100 groups land on every broker");
    // Java: "group".hashCode() == 98629247; 98629247 % 3 == 2 -> the third broker.
    assert_eq!(state.coordinator("group"), Some(3));
}

#[test]
fn deleted_ids_are_bounded() {
    let mut state = registered(&[1]);
    for i in 0..(DELETED_REMEMBERED + 5) {
        state.apply(&Command::CreateTopic {
            name: "t".into(),
            id: Uuid::from_u128(u128::try_from(i).unwrap()),
            assignment: vec![vec![1]],
            configs: BTreeMap::new(),
        });
        state.apply(&Command::DeleteTopic { name: "t".into() });
    }
    assert_eq!(state.deleted.len(), DELETED_REMEMBERED);
    assert_eq!(state.deleted.front(), Some(&Uuid::from_u128(5)));
}
