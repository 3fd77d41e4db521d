package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.util.ArrayList;
import java.util.Collection;
import java.util.List;
import java.util.Map;
import java.util.Optional;
import java.util.Set;
import java.util.concurrent.ExecutionException;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListConsumerGroupsOptions;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.ConsumerGroupState;
import org.apache.kafka.common.GroupType;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;

/**
 * The Java Admin client against a Weir broker: topics, the cluster, configs, groups, offsets
 * and records. Registered in {@link ClientChecks#main}.
 */
final class AdminChecks extends Clients {
    AdminChecks(String bootstrap) {
        super(bootstrap);
    }

    /** create (and the errors for a duplicate), list, describe, grow, delete. */
    String adminTopics() throws Exception {
        try (Admin admin = admin()) {
            admin.createTopics(List.of(new NewTopic("java-admin-a", 3, (short) 1), new NewTopic("java-admin-b", 1, (short) 1)))
                    .all().get();
            // validateOnly creates nothing.
            admin.createTopics(List.of(new NewTopic("java-admin-validate", 2, (short) 1)),
                    new CreateTopicsOptions().validateOnly(true)).all().get();
            try {
                createTopic(admin, "java-admin-a", 3);
                throw new Check.Failed("creating java-admin-a twice succeeded");
            } catch (ExecutionException e) {
                expect(e.getCause() instanceof TopicExistsException, "duplicate create: " + Check.describe(e));
            }
            Set<String> names = admin.listTopics().names().get();
            expect(names.containsAll(List.of("java-admin-a", "java-admin-b")), "listTopics: " + names);
            expect(!names.contains("java-admin-validate"), "validateOnly created the topic: " + names);

            Map<String, TopicDescription> d = admin.describeTopics(List.of("java-admin-a")).allTopicNames().get();
            TopicDescription a = d.get("java-admin-a");
            expectEq(3, a.partitions().size(), "partitions of java-admin-a");
            for (var p : a.partitions()) {
                expect(p.leader() != null && p.leader().id() == 0, "leader of partition " + p);
                expectEq(1, p.replicas().size(), "replicas of " + p);
                expectEq(1, p.isr().size(), "isr of " + p);
            }
            expect(!a.isInternal(), "java-admin-a is internal");

            admin.createPartitions(Map.of("java-admin-a", NewPartitions.increaseTo(5))).all().get();
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (admin.describeTopics(List.of("java-admin-a")).allTopicNames().get().get("java-admin-a").partitions().size() != 5) {
                expect(System.currentTimeMillis() < deadline, "java-admin-a never showed 5 partitions");
                Thread.sleep(100);
            }

            admin.deleteTopics(List.of("java-admin-a", "java-admin-b")).all().get();
            while (true) {
                Set<String> left = admin.listTopics().names().get();
                if (!left.contains("java-admin-a") && !left.contains("java-admin-b")) {
                    break;
                }
                expect(System.currentTimeMillis() < deadline, "deleted topics still listed: " + left);
                Thread.sleep(100);
            }
            return null;
        }
    }

    String adminDescribeCluster() throws Exception {
        try (Admin admin = admin()) {
            DescribeClusterResult r = admin.describeCluster();
            Collection<Node> nodes = r.nodes().get();
            Node controller = r.controller().get();
            String clusterId = r.clusterId().get();
            expectEq(1, nodes.size(), "nodes " + nodes);
            Node n = nodes.iterator().next();
            expectEq(0, n.id(), "node id");
            expectEq(bootstrap, n.host() + ":" + n.port(), "node address");
            expect(controller != null && controller.id() == 0, "controller " + controller);
            expect(clusterId != null && !clusterId.isEmpty(), "cluster id " + clusterId);
            return "cluster " + clusterId;
        }
    }

    String adminDescribeConfigs() throws Exception {
        try (Admin admin = admin()) {
            createTopic(admin, "java-configs", 1);
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "java-configs");
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "0");
            Map<ConfigResource, Config> all = admin.describeConfigs(List.of(topic, broker)).all().get();
            Config t = all.get(topic);
            for (String name : List.of("cleanup.policy", "retention.ms", "segment.bytes")) {
                ConfigEntry e = t.get(name);
                expect(e != null && e.value() != null, "topic config " + name + " missing: " + t.entries());
            }
            Config b = all.get(broker);
            expect(b.entries().size() > 0, "broker configs empty");
            return t.entries().size() + " topic entries, " + b.entries().size() + " broker entries";
        }
    }

    /** IncrementalAlterConfigs: set, read back, delete (back to the default). */
    String adminAlterConfigs() throws Exception {
        try (Admin admin = admin()) {
            createTopic(admin, "java-alter", 1);
            ConfigResource topic = new ConfigResource(ConfigResource.Type.TOPIC, "java-alter");
            String before = admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms").value();
            admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", "123456789"), AlterConfigOp.OpType.SET)))).all().get();
            ConfigEntry set = admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms");
            expectEq("123456789", set.value(), "retention.ms after SET");
            expectEq(ConfigEntry.ConfigSource.DYNAMIC_TOPIC_CONFIG, set.source(), "source after SET");
            admin.incrementalAlterConfigs(Map.of(topic, List.of(
                    new AlterConfigOp(new ConfigEntry("retention.ms", null), AlterConfigOp.OpType.DELETE)))).all().get();
            ConfigEntry back = admin.describeConfigs(List.of(topic)).all().get().get(topic).get("retention.ms");
            expectEq(before, back.value(), "retention.ms after DELETE");
            return null;
        }
    }

    /** list, describe (state, members, assignor), committed offsets, delete. */
    String adminGroups() throws Exception {
        String topic = "java-admin-groups";
        String group = "java-admin-group";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 2);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                records.add(recordFor(topic, i % 2, i, BASE_TS + i));
            }
            try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
                sendAll(producer, records);
            }
            Map<String, Object> cfg = Map.of(ConsumerConfig.GROUP_ID_CONFIG, group);
            try (KafkaConsumer<byte[], byte[]> c = consumer(cfg)) {
                c.subscribe(List.of(topic));
                int n = 0;
                long deadline = System.currentTimeMillis() + DEADLINE_MS;
                while (n < 20) {
                    expect(System.currentTimeMillis() < deadline, "consumed only " + n);
                    n += c.poll(POLL).count();
                }
                // Commit 7 and 3 (not the end) so the lag is visible.
                c.commitSync(Map.of(new TopicPartition(topic, 0), new OffsetAndMetadata(7, "meta"),
                        new TopicPartition(topic, 1), new OffsetAndMetadata(3)));

                @SuppressWarnings("deprecation")
                Collection<ConsumerGroupListing> listed = admin.listConsumerGroups().all().get();
                Set<String> ids = listed.stream().map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
                expect(ids.contains(group), "listConsumerGroups: " + ids);

                ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
                expectEq("STABLE", groupState(d), "group state");
                expectEq("range", d.partitionAssignor(), "assignor");
                expectEq(1, d.members().size(), "members");
                MemberDescription m = d.members().iterator().next();
                expectEq(Set.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)),
                        m.assignment().topicPartitions(), "member assignment");
                expect(d.coordinator() != null && d.coordinator().id() == 0, "coordinator " + d.coordinator());
                listGroupsByStateAndType(admin, group);
            }
            Map<TopicPartition, OffsetAndMetadata> offsets =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            expectEq(7L, offsets.get(new TopicPartition(topic, 0)).offset(), "committed p0");
            expectEq("meta", offsets.get(new TopicPartition(topic, 0)).metadata(), "metadata p0");
            expectEq(3L, offsets.get(new TopicPartition(topic, 1)).offset(), "committed p1");
            ConsumerGroupDescription empty = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            expectEq("EMPTY", groupState(empty), "group state after the member left");

            admin.deleteConsumerGroups(List.of(group)).all().get();
            @SuppressWarnings("deprecation")
            Set<String> left = admin.listConsumerGroups().all().get().stream()
                    .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
            expect(!left.contains(group), "group still listed after delete: " + left);
            Map<TopicPartition, OffsetAndMetadata> gone =
                    admin.listConsumerGroupOffsets(group).partitionsToOffsetAndMetadata().get();
            expect(gone.values().stream().allMatch(v -> v == null), "offsets after delete: " + gone);
            return null;
        }
    }

    /**
     * ListGroups v4's states filter and v5's types filter, with {@code group} Stable (one
     * member): the ListConsumerGroupsOptions calls both 3.9 and 4.x have (4.x deprecates them
     * for listGroups, which sends the same request).
     */
    @SuppressWarnings("deprecation")
    private static void listGroupsByStateAndType(Admin admin, String group) throws Exception {
        Map<String, ConsumerGroupListing> stable = admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .inStates(Set.of(ConsumerGroupState.STABLE))).all().get().stream()
                .collect(Collectors.toMap(ConsumerGroupListing::groupId, l -> l));
        expect(stable.containsKey(group), "listConsumerGroups in STABLE: " + stable.keySet());
        expectEq(Optional.of(ConsumerGroupState.STABLE), stable.get(group).state(), "listed state");
        Set<String> empty = admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .inStates(Set.of(ConsumerGroupState.EMPTY, ConsumerGroupState.DEAD))).all().get().stream()
                .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        expect(!empty.contains(group), "a Stable group listed in EMPTY or DEAD: " + empty);
        Map<String, ConsumerGroupListing> classic = admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .withTypes(Set.of(GroupType.CLASSIC))).all().get().stream()
                .collect(Collectors.toMap(ConsumerGroupListing::groupId, l -> l));
        expect(classic.containsKey(group), "listConsumerGroups of type CLASSIC: " + classic.keySet());
        expectEq(Optional.of(GroupType.CLASSIC), classic.get(group).type(), "listed type");
        Set<String> consumer = admin.listConsumerGroups(new ListConsumerGroupsOptions()
                        .withTypes(Set.of(GroupType.CONSUMER))).all().get().stream()
                .map(ConsumerGroupListing::groupId).collect(Collectors.toSet());
        expect(!consumer.contains(group), "a classic group listed as a KIP-848 consumer group: " + consumer);
    }

    String adminListOffsets() throws Exception {
        String topic = "java-list-offsets";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                records.add(recordFor(topic, 0, i, BASE_TS + i * 1000L));
            }
            try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
                sendAll(producer, records);
            }
            TopicPartition tp = new TopicPartition(topic, 0);
            ListOffsetsResultInfo earliest = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp);
            ListOffsetsResultInfo latest = admin.listOffsets(Map.of(tp, OffsetSpec.latest())).all().get().get(tp);
            ListOffsetsResultInfo at = admin.listOffsets(Map.of(tp, OffsetSpec.forTimestamp(BASE_TS + 12_000L))).all().get().get(tp);
            expectEq(0L, earliest.offset(), "earliest");
            expectEq(30L, latest.offset(), "latest");
            expectEq(12L, at.offset(), "forTimestamp offset");
            expectEq(BASE_TS + 12_000L, at.timestamp(), "forTimestamp timestamp");
            return null;
        }
    }

    /** DeleteRecords before offset 10: the low watermark moves and reading starts there. */
    String adminDeleteRecords() throws Exception {
        String topic = "java-delete-records";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 30; i++) {
                records.add(recordFor(topic, 0, i, BASE_TS + i));
            }
            List<Sent> sent;
            try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
                sent = sendAll(producer, records);
            }
            TopicPartition tp = new TopicPartition(topic, 0);
            long low = admin.deleteRecords(Map.of(tp, RecordsToDelete.beforeOffset(10))).lowWatermarks().get(tp).get().lowWatermark();
            expectEq(10L, low, "low watermark");
            ListOffsetsResultInfo earliest = admin.listOffsets(Map.of(tp, OffsetSpec.earliest())).all().get().get(tp);
            expectEq(10L, earliest.offset(), "earliest after deleteRecords");
            List<ConsumerRecord<byte[], byte[]>> got = readAll(List.of(tp)).get(tp);
            expectEq(20, got.size(), "records left");
            for (int i = 0; i < 20; i++) {
                compare(sent.get(10 + i), got.get(i));
            }
            return null;
        }
    }
}
