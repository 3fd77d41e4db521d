package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.Collection;
import java.util.HashMap;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.ExecutionException;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.AlterConfigOp;
import org.apache.kafka.clients.admin.Config;
import org.apache.kafka.clients.admin.ConfigEntry;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.ConsumerGroupListing;
import org.apache.kafka.clients.admin.CreateTopicsOptions;
import org.apache.kafka.clients.admin.DescribeClusterResult;
import org.apache.kafka.clients.admin.ListOffsetsResult.ListOffsetsResultInfo;
import org.apache.kafka.clients.admin.MemberDescription;
import org.apache.kafka.clients.admin.NewPartitions;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.OffsetSpec;
import org.apache.kafka.clients.admin.RecordsToDelete;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.KafkaException;
import org.apache.kafka.common.Node;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.errors.TopicExistsException;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Apache Kafka's Java client (producer, consumer, Admin) against a Weir broker. Usage:
 * {@code ClientChecks <bootstrap> [check...]}; the checks are listed in {@link #main}. Every
 * record read back is compared with what was sent: partition, offset, key, value, headers and
 * timestamp. Topic names are fixed, so each run needs a fresh broker.
 *
 * <p>The same source compiles against kafka-clients 3.9 and 4.x; where the two differ (the
 * group state accessor), reflection picks whichever exists.
 */
public final class ClientChecks {
    static final Duration POLL = Duration.ofMillis(100);
    static final long DEADLINE_MS = 30_000;
    static final long BASE_TS = 1_700_000_000_000L;

    private final String bootstrap;

    ClientChecks(String bootstrap) {
        this.bootstrap = bootstrap;
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: ClientChecks <bootstrap> [check...]");
            System.exit(2);
        }
        ClientChecks c = new ClientChecks(args[0]);
        Check runner = new Check();
        for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
            runner.add("produce_idempotent_" + codec, () -> c.produceAndReadBack(codec));
        }
        runner.add("group_range", () -> c.groupConsume("range", "org.apache.kafka.clients.consumer.RangeAssignor"));
        runner.add("group_cooperative_sticky",
                () -> c.groupConsume("cooperative", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"));
        runner.add("group_protocol_consumer", c::groupProtocolConsumer);
        runner.add("offsets_for_times_and_seek", c::offsetsForTimesAndSeek);
        runner.add("read_committed_small_fetches", c::readCommittedSmallFetches);
        runner.add("group_static_membership", c::groupStaticMembership);
        runner.add("transactions_refused", c::transactionsRefused);
        runner.add("offset_out_of_range", c::offsetOutOfRange);
        runner.add("pattern_subscription_auto_commit", c::patternSubscriptionAutoCommit);
        runner.add("admin_topics", c::adminTopics);
        runner.add("admin_describe_cluster", c::adminDescribeCluster);
        runner.add("admin_describe_configs", c::adminDescribeConfigs);
        runner.add("admin_alter_configs", c::adminAlterConfigs);
        runner.add("admin_groups", c::adminGroups);
        runner.add("admin_list_offsets", c::adminListOffsets);
        runner.add("admin_delete_records", c::adminDeleteRecords);
        int failed = runner.run(Arrays.asList(args).subList(1, args.length), 4);
        System.exit(failed == 0 ? 0 : 1);
    }

    // -- clients ----------------------------------------------------------------------------

    Admin admin() {
        Properties p = new Properties();
        p.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(AdminClientConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(AdminClientConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000);
        return Admin.create(p);
    }

    KafkaProducer<byte[], byte[]> producer(String compression) {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.COMPRESSION_TYPE_CONFIG, compression);
        p.put(ProducerConfig.LINGER_MS_CONFIG, 5);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 15_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 30_000);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        return new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer());
    }

    KafkaConsumer<byte[], byte[]> consumer(Map<String, Object> extra) {
        Properties p = new Properties();
        p.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, false);
        p.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        p.put(ConsumerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ConsumerConfig.DEFAULT_API_TIMEOUT_MS_CONFIG, 15_000);
        p.putAll(extra);
        return new KafkaConsumer<>(p, new ByteArrayDeserializer(), new ByteArrayDeserializer());
    }

    void createTopic(Admin admin, String name, int partitions) throws Exception {
        admin.createTopics(List.of(new NewTopic(name, partitions, (short) 1))).all().get();
    }

    // -- records ----------------------------------------------------------------------------

    /** One record as sent, with where the broker put it. */
    record Sent(int partition, long offset, byte[] key, byte[] value, List<Header> headers, long timestamp) {}

    static byte[] bytes(String s) {
        return s == null ? null : s.getBytes(StandardCharsets.UTF_8);
    }

    /** Record i of a test set: null keys, empty and large values, headers with null values. */
    static ProducerRecord<byte[], byte[]> recordFor(String topic, int partition, int i, long timestamp) {
        byte[] key = i % 7 == 0 ? null : bytes("key-" + i);
        byte[] value;
        if (i % 11 == 0) {
            value = new byte[0];
        } else if (i % 13 == 0) {
            value = null;
        } else {
            StringBuilder sb = new StringBuilder("value-" + i + "-");
            sb.append("x".repeat(i % 50 == 1 ? 5_000 : i % 40));
            value = bytes(sb.toString());
        }
        List<Header> headers = new ArrayList<>();
        if (i % 2 == 0) {
            headers.add(new RecordHeader("h", bytes("v" + i)));
        }
        if (i % 5 == 0) {
            headers.add(new RecordHeader("nullable", null));
            headers.add(new RecordHeader("h", bytes("second " + i)));
        }
        return new ProducerRecord<>(topic, partition, timestamp, key, value, headers);
    }

    /** Sends every record (idempotent, acks=all) and waits for each acknowledgement. */
    static List<Sent> sendAll(KafkaProducer<byte[], byte[]> producer, List<ProducerRecord<byte[], byte[]>> records)
            throws Exception {
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        for (ProducerRecord<byte[], byte[]> r : records) {
            futures.add(producer.send(r));
        }
        producer.flush();
        List<Sent> sent = new ArrayList<>();
        for (int i = 0; i < records.size(); i++) {
            RecordMetadata md = futures.get(i).get();
            ProducerRecord<byte[], byte[]> r = records.get(i);
            expectEq(r.partition(), md.partition(), "partition of record " + i);
            List<Header> headers = new ArrayList<>();
            r.headers().forEach(headers::add);
            sent.add(new Sent(md.partition(), md.offset(), r.key(), r.value(), headers, r.timestamp()));
        }
        return sent;
    }

    /** Reads the partitions from their beginning to their end offsets, with assign(). */
    Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> readAll(Collection<TopicPartition> partitions) {
        return readAll(partitions, Map.of());
    }

    Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> readAll(Collection<TopicPartition> partitions, Map<String, Object> extra) {
        try (KafkaConsumer<byte[], byte[]> c = consumer(extra)) {
            c.assign(partitions);
            c.seekToBeginning(partitions);
            Map<TopicPartition, Long> end = c.endOffsets(partitions);
            Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = new HashMap<>();
            partitions.forEach(tp -> got.put(tp, new ArrayList<>()));
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (partitions.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                expect(System.currentTimeMillis() < deadline, "timed out reading " + partitions + " to " + end);
                for (ConsumerRecord<byte[], byte[]> r : c.poll(POLL)) {
                    got.get(new TopicPartition(r.topic(), r.partition())).add(r);
                }
            }
            return got;
        }
    }

    static String show(byte[] b) {
        return b == null ? "null" : "'" + new String(b, StandardCharsets.UTF_8) + "'";
    }

    static String showHeaders(Iterable<Header> headers) {
        List<String> out = new ArrayList<>();
        for (Header h : headers) {
            out.add(h.key() + "=" + show(h.value()));
        }
        return out.toString();
    }

    /** The record read must be exactly the one sent, at the offset the producer was told. */
    static void compare(Sent want, ConsumerRecord<byte[], byte[]> got) {
        String at = got.topic() + "-" + got.partition() + "@" + got.offset();
        expectEq(want.partition(), got.partition(), "partition at " + at);
        expectEq(want.offset(), got.offset(), "offset at " + at);
        expectEq(show(want.key()), show(got.key()), "key at " + at);
        expectEq(show(want.value()), show(got.value()), "value at " + at);
        expectEq(showHeaders(want.headers()), showHeaders(got.headers()), "headers at " + at);
        expectEq(want.timestamp(), got.timestamp(), "timestamp at " + at);
        expectEq(TimestampType.CREATE_TIME, got.timestampType(), "timestamp type at " + at);
    }

    /** Everything in `sent` read back, in order, from each partition's beginning, and nothing else. */
    void readBackExactly(String topic, int partitions, List<Sent> sent) {
        List<TopicPartition> tps = new ArrayList<>();
        for (int p = 0; p < partitions; p++) {
            tps.add(new TopicPartition(topic, p));
        }
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = readAll(tps);
        for (int p = 0; p < partitions; p++) {
            final int part = p;
            List<Sent> want = sent.stream().filter(s -> s.partition() == part).collect(Collectors.toList());
            List<ConsumerRecord<byte[], byte[]>> have = got.get(new TopicPartition(topic, p));
            expectEq(want.size(), have.size(), "records read back from " + topic + "-" + p);
            for (int i = 0; i < want.size(); i++) {
                compare(want.get(i), have.get(i));
            }
        }
    }

    // -- checks -----------------------------------------------------------------------------

    /** Idempotent, acks=all, one codec: 600 records over 3 partitions, read back exactly. */
    String produceAndReadBack(String codec) throws Exception {
        String topic = "java-codec-" + codec;
        try (Admin admin = admin()) {
            createTopic(admin, topic, 3);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 600; i++) {
            records.add(recordFor(topic, i % 3, i, BASE_TS + i));
        }
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = producer(codec)) {
            sent = sendAll(producer, records);
            // A second round after the first is acknowledged: sequences carry on.
            List<ProducerRecord<byte[], byte[]>> more = new ArrayList<>();
            for (int i = 600; i < 700; i++) {
                more.add(recordFor(topic, i % 3, i, BASE_TS + i));
            }
            sent.addAll(sendAll(producer, more));
        }
        for (int p = 0; p < 3; p++) {
            final int part = p;
            long[] offsets = sent.stream().filter(s -> s.partition() == part).mapToLong(Sent::offset).toArray();
            for (int i = 0; i < offsets.length; i++) {
                expectEq((long) i, offsets[i], "acknowledged offset #" + i + " in partition " + p);
            }
        }
        readBackExactly(topic, 3, sent);
        return sent.size() + " records";
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

    static void collect(ConsumerRecords<byte[], byte[]> records, Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> into) {
        for (ConsumerRecord<byte[], byte[]> r : records) {
            into.computeIfAbsent(new TopicPartition(r.topic(), r.partition()), k -> new ArrayList<>()).add(r);
        }
    }

    static Map<TopicPartition, Integer> counts(Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got) {
        Map<TopicPartition, Integer> out = new TreeMap<>((a, b) -> a.toString().compareTo(b.toString()));
        got.forEach((k, v) -> out.put(k, v.size()));
        return out;
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
     * read_committed (no transactions, so everything up to the high watermark) with fetch
     * limits smaller than one batch: KIP-74 says the first batch still comes whole, so the
     * consumer makes progress; every record exact.
     */
    String readCommittedSmallFetches() throws Exception {
        String topic = "java-small-fetches";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 2);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 120; i++) {
            records.add(recordFor(topic, i % 2, i, BASE_TS + i));
        }
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = producer("zstd")) {
            sent = sendAll(producer, records);
        }
        List<TopicPartition> tps = List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1));
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got = readAll(tps, Map.of(
                ConsumerConfig.ISOLATION_LEVEL_CONFIG, "read_committed",
                ConsumerConfig.FETCH_MAX_BYTES_CONFIG, 1024,
                ConsumerConfig.MAX_PARTITION_FETCH_BYTES_CONFIG, 512,
                ConsumerConfig.MAX_POLL_RECORDS_CONFIG, 7));
        for (TopicPartition tp : tps) {
            List<Sent> want = sent.stream().filter(x -> x.partition() == tp.partition()).collect(Collectors.toList());
            List<ConsumerRecord<byte[], byte[]>> have = got.get(tp);
            expectEq(want.size(), have.size(), "records read from " + tp);
            for (int i = 0; i < want.size(); i++) {
                compare(want.get(i), have.get(i));
            }
        }
        return null;
    }

    /**
     * Static membership (group.instance.id, JoinGroup v5): a member that closes without leaving
     * is replaced at once by a new consumer with the same instance id, which gets the same
     * partitions and resumes from the commits; then the Admin client removes it by instance id
     * (LeaveGroup v3) and the group is empty.
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
     * Weir has no transactions: initTransactions must fail at once with an error that says so
     * (the broker refuses the transaction coordinator lookup with
     * TRANSACTIONAL_ID_AUTHORIZATION_FAILED, which the client treats as fatal).
     */
    String transactionsRefused() throws Exception {
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.TRANSACTIONAL_ID_CONFIG, "java-txn");
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 20_000);
        long start = System.currentTimeMillis();
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            try {
                producer.initTransactions();
                throw new Check.Failed("initTransactions succeeded against a broker without transactions");
            } catch (org.apache.kafka.common.errors.TransactionalIdAuthorizationException e) {
                long took = System.currentTimeMillis() - start;
                expect(took < 10_000, "initTransactions took " + took + " ms to fail");
                return "refused in " + took + " ms: " + Check.describe(e);
            }
        }
    }

    /**
     * A fetch past the end gets OFFSET_OUT_OF_RANGE: with auto.offset.reset=latest the client
     * moves to the end, with earliest to the start, with none poll() throws.
     */
    String offsetOutOfRange() throws Exception {
        String topic = "java-out-of-range";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
        }
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        for (int i = 0; i < 10; i++) {
            records.add(recordFor(topic, 0, i, BASE_TS + i));
        }
        List<Sent> sent;
        try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
            sent = sendAll(producer, records);
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "latest"))) {
            c.assign(List.of(tp));
            c.seek(tp, 1_000);
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (c.position(tp) != 10) {
                expect(System.currentTimeMillis() < deadline, "latest reset never happened: position " + c.position(tp));
                expect(c.poll(POLL).isEmpty(), "records after seeking past the end");
            }
        }
        try (KafkaConsumer<byte[], byte[]> c = consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest"))) {
            c.assign(List.of(tp));
            c.seek(tp, 1_000);
            compare(sent.get(0), firstRecord(c));
        }
        try (KafkaConsumer<byte[], byte[]> c = consumer(Map.of(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "none"))) {
            c.assign(List.of(tp));
            c.seek(tp, 1_000);
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            while (true) {
                expect(System.currentTimeMillis() < deadline, "no OffsetOutOfRangeException with auto.offset.reset=none");
                try {
                    c.poll(POLL);
                } catch (org.apache.kafka.clients.consumer.OffsetOutOfRangeException e) {
                    expectEq(Map.of(tp, 1_000L), e.offsetOutOfRangePartitions(), "partitions out of range");
                    break;
                }
            }
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

    /** offsetsForTimes on exact, in-between and past-the-end timestamps; seek and position. */
    String offsetsForTimesAndSeek() throws Exception {
        String topic = "java-times";
        try (Admin admin = admin()) {
            createTopic(admin, topic, 1);
        }
        List<Sent> sent = new ArrayList<>();
        try (KafkaProducer<byte[], byte[]> producer = producer("none")) {
            // Ten acknowledged rounds of ten: several batches, timestamps 1 s apart.
            for (int round = 0; round < 10; round++) {
                List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
                for (int i = round * 10; i < round * 10 + 10; i++) {
                    records.add(recordFor(topic, 0, i, BASE_TS + i * 1000L));
                }
                sent.addAll(sendAll(producer, records));
            }
        }
        TopicPartition tp = new TopicPartition(topic, 0);
        try (KafkaConsumer<byte[], byte[]> c = consumer(Map.of())) {
            c.assign(List.of(tp));
            for (int i : new int[] {0, 1, 9, 10, 37, 99}) {
                OffsetAndTimestamp exact = c.offsetsForTimes(Map.of(tp, BASE_TS + i * 1000L)).get(tp);
                expect(exact != null, "offsetsForTimes(" + i + " s) found nothing");
                expectEq((long) i, exact.offset(), "offsetsForTimes exact " + i);
                expectEq(BASE_TS + i * 1000L, exact.timestamp(), "timestamp found for " + i);
                OffsetAndTimestamp between = c.offsetsForTimes(Map.of(tp, BASE_TS + i * 1000L - 500)).get(tp);
                expectEq((long) i, between == null ? null : between.offset(), "offsetsForTimes just before " + i);
            }
            OffsetAndTimestamp past = c.offsetsForTimes(Map.of(tp, BASE_TS + 1_000_000L)).get(tp);
            expect(past == null, "offsetsForTimes past the last record: expected null, got " + past);
            expectEq(0L, c.beginningOffsets(List.of(tp)).get(tp), "beginningOffsets");
            expectEq(100L, c.endOffsets(List.of(tp)).get(tp), "endOffsets");

            c.seek(tp, 37);
            ConsumerRecord<byte[], byte[]> first = firstRecord(c);
            compare(sent.get(37), first);
            c.seekToEnd(List.of(tp));
            expectEq(100L, c.position(tp), "position after seekToEnd");
            c.seekToBeginning(List.of(tp));
            expectEq(0L, c.position(tp), "position after seekToBeginning");
            compare(sent.get(0), firstRecord(c));
            c.seek(tp, 99);
            compare(sent.get(99), firstRecord(c));
        }
        return "100 records";
    }

    static ConsumerRecord<byte[], byte[]> firstRecord(KafkaConsumer<byte[], byte[]> c) {
        long deadline = System.currentTimeMillis() + DEADLINE_MS;
        while (true) {
            expect(System.currentTimeMillis() < deadline, "no record after seek");
            ConsumerRecords<byte[], byte[]> records = c.poll(POLL);
            if (!records.isEmpty()) {
                return records.iterator().next();
            }
        }
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

    /** ConsumerGroupDescription.groupState() (4.x) or state() (3.x), as an upper-case name. */
    static String groupState(ConsumerGroupDescription d) throws Exception {
        Method m;
        try {
            m = d.getClass().getMethod("groupState");
        } catch (NoSuchMethodException e) {
            m = d.getClass().getMethod("state");
        }
        return m.invoke(d).toString().toUpperCase().replace("_", "");
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
