package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Set;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.TopicPartition;

/**
 * The Java consumer in groups against a Weir broker: the range and cooperative-sticky
 * assignors with two members, static membership, a pattern subscription with auto-commit, and
 * the KIP-848 protocol refused clearly. Registered in {@link ClientChecks#main}.
 */
final class GroupChecks extends Clients {
    GroupChecks(String bootstrap) {
        super(bootstrap);
    }

    /**
     * Two consumers of one group on a 4-partition topic with the given assignor: each gets two
     * partitions, every record is read exactly once between them, commits land, and after one
     * leaves the other takes over from the committed offsets (nothing read twice).
     */
    String groupConsume(String name, String assignor) throws Exception {
        String topic = "java-group-" + name;
        String group = "java-group-" + name;
        try (Admin admin = admin()) {
            createTopic(admin, topic, 4);
        }
        Map<String, Object> cfg = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.PARTITION_ASSIGNMENT_STRATEGY_CONFIG, assignor,
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 10_000,
                ConsumerConfig.HEARTBEAT_INTERVAL_MS_CONFIG, 500,
                ConsumerConfig.MAX_POLL_INTERVAL_MS_CONFIG, 30_000);
        KafkaConsumer<byte[], byte[]> c1 = consumer(cfg);
        KafkaConsumer<byte[], byte[]> c2 = consumer(cfg);
        try {
            c1.subscribe(List.of(topic));
            c2.subscribe(List.of(topic));
            Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            // Both members in the group with two partitions each before anything is produced.
            while (c1.assignment().size() != 2 || c2.assignment().size() != 2) {
                expect(System.currentTimeMillis() < deadline,
                        "group never settled: c1 " + c1.assignment() + ", c2 " + c2.assignment());
                collect(c1.poll(POLL), got);
                collect(c2.poll(POLL), got);
            }
            Set<TopicPartition> both = new HashSet<>(c1.assignment());
            both.addAll(c2.assignment());
            expectEq(4, both.size(), "partitions assigned (disjoint) " + c1.assignment() + " " + c2.assignment());

            List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
            for (int i = 0; i < 400; i++) {
                records.add(recordFor(topic, i % 4, i, BASE_TS + i));
            }
            List<Sent> sent;
            try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
                sent = sendAll(producer, records);
            }
            while (got.values().stream().mapToInt(List::size).sum() < sent.size()) {
                expect(System.currentTimeMillis() < deadline, "timed out consuming: " + counts(got));
                collect(c1.poll(POLL), got);
                collect(c2.poll(POLL), got);
            }
            compareGroupReads(sent, got, topic);
            c1.commitSync();
            c2.commitSync();
            Set<TopicPartition> all = both;
            Map<TopicPartition, OffsetAndMetadata> committed = c1.committed(all);
            for (TopicPartition tp : all) {
                expectEq(100L, committed.get(tp) == null ? null : committed.get(tp).offset(), "committed " + tp);
            }

            // c1 leaves: c2 takes all four partitions and resumes from the commits.
            c1.close(Duration.ofSeconds(10));
            c1 = null;
            Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> after = new HashMap<>();
            while (c2.assignment().size() != 4) {
                expect(System.currentTimeMillis() < deadline + DEADLINE_MS, "c2 never got all 4: " + c2.assignment());
                collect(c2.poll(POLL), after);
            }
            List<ProducerRecord<byte[], byte[]>> more = new ArrayList<>();
            for (int i = 400; i < 440; i++) {
                more.add(recordFor(topic, i % 4, i, BASE_TS + i));
            }
            List<Sent> sentMore;
            try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
                sentMore = sendAll(producer, more);
            }
            while (after.values().stream().mapToInt(List::size).sum() < sentMore.size()) {
                expect(System.currentTimeMillis() < deadline + DEADLINE_MS, "timed out after rebalance: " + counts(after));
                collect(c2.poll(POLL), after);
            }
            compareGroupReads(sentMore, after, topic);
            c2.commitSync();
            return "assignment then " + both + ", 440 records once each";
        } finally {
            if (c1 != null) {
                c1.close(Duration.ofSeconds(5));
            }
            c2.close(Duration.ofSeconds(10));
        }
    }

    static void compareGroupReads(List<Sent> sent, Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got, String topic) {
        for (int p = 0; p < 4; p++) {
            final int part = p;
            List<Sent> want = sent.stream().filter(s -> s.partition() == part).collect(Collectors.toList());
            List<ConsumerRecord<byte[], byte[]>> have = got.getOrDefault(new TopicPartition(topic, p), List.of());
            expectEq(want.size(), have.size(), "records consumed from " + topic + "-" + p + " (all: " + counts(got) + ")");
            for (int i = 0; i < want.size(); i++) {
                compare(want.get(i), have.get(i));
            }
        }
    }

    /**
     * group.protocol=consumer (KIP-848) needs ConsumerGroupHeartbeat, which Weir does not serve:
     * the client must fail with an error that says so, not hang or fall back silently.
     */
    String groupProtocolConsumer() throws Exception {
        String topic = "java-kip848";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
        }
        Map<String, Object> cfg = Map.of(ConsumerConfig.GROUP_ID_CONFIG, "java-kip848", "group.protocol", "consumer");
        try (KafkaConsumer<byte[], byte[]> c = consumer(cfg)) {
            c.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 20_000;
            while (System.currentTimeMillis() < deadline) {
                try {
                    c.poll(POLL);
                } catch (KafkaException e) {
                    String msg = Check.describe(e);
                    expect(e instanceof org.apache.kafka.common.errors.UnsupportedVersionException,
                            "expected UnsupportedVersionException, got " + msg);
                    expect(msg.toLowerCase().contains("consumer group protocol")
                                    || msg.toLowerCase().contains("consumer_group_heartbeat"),
                            "the error does not name the protocol: " + msg);
                    return "refused: " + msg;
                }
            }
            throw new Check.Failed("group.protocol=consumer: no error within 20 s, assignment " + c.assignment());
        }
    }

    /**
     * Static membership (group.instance.id, JoinGroup v5), read_committed: a member that closes
     * without leaving is replaced at once by a new consumer with the same instance id, which
     * gets the same partitions and resumes from the commits; then the Admin client removes it
     * by instance id (LeaveGroup v3) and the group is empty.
     */
    String groupStaticMembership() throws Exception {
        String topic = "java-static";
        String group = "java-static-group";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 2);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 60; i++) {
            records.add(recordFor(topic, i % 2, i, BASE_TS + i));
        }
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
            sent = sendAll(producer, records);
        }
        Map<String, Object> cfg = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.GROUP_INSTANCE_ID_CONFIG, "static-1",
                // read_committed asks OffsetFetch for stable offsets (v7+); the plain consumer
                // falls back to the served versions, where every commit is stable anyway.
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.SESSION_TIMEOUT_MS_CONFIG, 30_000,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 20);
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        try (KafkaConsumer<byte[], byte[]> c = consumer(cfg)) {
            c.subscribe(List.of(topic));
            while (got.values().stream().mapToInt(List::size).sum() < 20) {
                expect(System.currentTimeMillis() < deadline, "first static member read " + counts(got));
                collect(c.poll(POLL), got);
            }
            c.commitSync();
        }
        // Closing a static member sends no LeaveGroup: the member stays until its session ends.
        long rejoin = System.currentTimeMillis();
        try (KafkaConsumer<byte[], byte[]> c = consumer(cfg)) {
            c.subscribe(List.of(topic));
            while (got.values().stream().mapToInt(List::size).sum() < 60) {
                expect(System.currentTimeMillis() < deadline, "second static member read " + counts(got));
                collect(c.poll(POLL), got);
            }
            long took = System.currentTimeMillis() - rejoin;
            expect(took < 10_000, "the same instance id took " + took + " ms to rejoin (session timeout is 30 s)");
            expectEq(2, c.assignment().size(), "assignment of the rejoined static member");
            c.commitSync();
        }
        for (int p = 0; p < 2; p++) {
            final int part = p;
            List<Sent> want = sent.stream().filter(x -> x.partition() == part).collect(Collectors.toList());
            List<ConsumerRecord<byte[], byte[]>> have = got.get(new TopicPartition(topic, p));
            expectEq(want.size(), have == null ? 0 : have.size(), "records of partition " + p + " (" + counts(got) + ")");
            for (int i = 0; i < want.size(); i++) {
                compare(want.get(i), have.get(i));
            }
        }
        try (Admin admin = admin()) {
            ConsumerGroupDescription d = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            expectEq(1, d.members().size(), "members after the static member closed");
            expectEq(java.util.Optional.of("static-1"), d.members().iterator().next().groupInstanceId(), "instance id");
            admin.removeMembersFromConsumerGroup(group, new org.apache.kafka.clients.admin.RemoveMembersFromConsumerGroupOptions(
                    List.of(new org.apache.kafka.clients.admin.MemberToRemove("static-1")))).all().get();
            ConsumerGroupDescription after = admin.describeConsumerGroups(List.of(group)).all().get().get(group);
            expectEq(0, after.members().size(), "members after removeMembersFromConsumerGroup");
            expectEq("EMPTY", groupState(after), "state after removeMembersFromConsumerGroup");
        }
        return null;
    }

    /**
     * subscribe(Pattern) with auto-commit: a topic created after the subscription is picked up
     * at the next metadata refresh and read from its start; the auto-commits land.
     */
    String patternSubscriptionAutoCommit() throws Exception {
        String group = "java-pattern-group";
        try (Admin admin = admin()) {
            createTopic(admin, "java-pattern-a", 1);
        }
        Map<String, Object> cfg = Map.of(
                ConsumerConfig.GROUP_ID_CONFIG, group,
                ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, true,
                ConsumerConfig.AUTO_COMMIT_INTERVAL_MS_CONFIG, 100,
                ConsumerConfig.METADATA_MAX_AGE_CONFIG, 300);
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
        List<Sent> sent = new ArrayList<>();
        try (KafkaConsumer<byte[], byte[]> c = consumer(cfg);
                KafkaProducer<byte[], byte[]> producer = producer("lz4")) {
            c.subscribe(java.util.regex.Pattern.compile("java-pattern-.*"));
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (c.assignment().isEmpty()) {
                expect(System.currentTimeMillis() < deadline, "pattern subscription never assigned");
                collect(c.poll(POLL), got);
            }
            sent.addAll(sendAll(producer, List.of(recordFor("java-pattern-a", 0, 1, BASE_TS + 1))));
            try (Admin admin = admin()) {
                createTopic(admin, "java-pattern-b", 2);
            }
            List<ProducerRecord<byte[], byte[]>> more = new ArrayList<>();
            for (int i = 0; i < 20; i++) {
                more.add(recordFor("java-pattern-b", i % 2, i, BASE_TS + i));
            }
            sent.addAll(sendAll(producer, more));
            while (got.values().stream().mapToInt(List::size).sum() < sent.size()) {
                expect(System.currentTimeMillis() < deadline, "pattern consumer read " + counts(got) + ", assigned " + c.assignment());
                collect(c.poll(POLL), got);
            }
            // Auto-commit: wait until the committed offsets reach the ends.
            Set<TopicPartition> tps = Set.of(new TopicPartition("java-pattern-a", 0),
                    new TopicPartition("java-pattern-b", 0), new TopicPartition("java-pattern-b", 1));
            while (true) {
                collect(c.poll(POLL), got);
                Map<TopicPartition, OffsetAndMetadata> committed = c.committed(tps);
                Map<TopicPartition, Long> end = c.endOffsets(tps);
                if (tps.stream().allMatch(tp -> committed.get(tp) != null && committed.get(tp).offset() == end.get(tp))) {
                    break;
                }
                expect(System.currentTimeMillis() < deadline, "auto-commit never reached the end: " + committed + " vs " + end);
            }
        }
        for (Sent want : sent) {
            boolean found = false;
            for (List<ConsumerRecord<byte[], byte[]>> list : got.values()) {
                for (ConsumerRecord<byte[], byte[]> r : list) {
                    if (r.topic().startsWith("java-pattern-") && r.partition() == want.partition() && r.offset() == want.offset()
                            && show(r.value()).equals(show(want.value()))) {
                        compare(want, r);
                        found = true;
                    }
                }
            }
            expect(found, "record at partition " + want.partition() + " offset " + want.offset() + " not consumed");
        }
        expectEq(sent.size(), got.values().stream().mapToInt(List::size).sum(), "records consumed (no repeats)");
        return null;
    }
}
