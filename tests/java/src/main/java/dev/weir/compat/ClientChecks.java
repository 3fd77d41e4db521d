package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.util.ArrayList;
import java.util.Arrays;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.consumer.OffsetAndTimestamp;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * Apache Kafka's Java client (producer, consumer, Admin) against a Weir broker. Usage:
 * {@code ClientChecks <bootstrap> [check...]}; the checks are listed in {@link #main}. Every
 * record read back is compared with what was sent: partition, offset, key, value, headers and
 * timestamp. Topic names are fixed, so each run needs a fresh broker.
 *
 * <p>This class has the producer and fetch checks; {@link GroupChecks} the consumer groups,
 * {@link AdminChecks} the Admin client, {@link Clients} what they share.
 */
public final class ClientChecks extends Clients {
    ClientChecks(String bootstrap) {
        super(bootstrap);
    }

    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: ClientChecks <bootstrap> [check...]");
            System.exit(2);
        }
        ClientChecks c = new ClientChecks(args[0]);
        GroupChecks g = new GroupChecks(args[0]);
        AdminChecks a = new AdminChecks(args[0]);
        Check runner = new Check();
        for (String codec : new String[] {"none", "gzip", "snappy", "lz4", "zstd"}) {
            runner.add("produce_idempotent_" + codec, () -> c.produceAndReadBack(codec));
        }
        runner.add("group_range", () -> g.groupConsume("range", "org.apache.kafka.clients.consumer.RangeAssignor"));
        runner.add("group_cooperative_sticky",
                () -> g.groupConsume("cooperative", "org.apache.kafka.clients.consumer.CooperativeStickyAssignor"));
        runner.add("group_protocol_consumer", g::groupProtocolConsumer);
        runner.add("offsets_for_times_and_seek", c::offsetsForTimesAndSeek);
        runner.add("read_committed_small_fetches", c::readCommittedSmallFetches);
        runner.add("group_static_membership", g::groupStaticMembership);
        runner.add("transactions_refused", c::transactionsRefused);
        runner.add("offset_out_of_range", c::offsetOutOfRange);
        runner.add("pattern_subscription_auto_commit", g::patternSubscriptionAutoCommit);
        runner.add("admin_topics", a::adminTopics);
        runner.add("admin_describe_cluster", a::adminDescribeCluster);
        runner.add("admin_describe_configs", a::adminDescribeConfigs);
        runner.add("admin_alter_configs", a::adminAlterConfigs);
        runner.add("admin_groups", a::adminGroups);
        runner.add("admin_list_offsets", a::adminListOffsets);
        runner.add("admin_delete_records", a::adminDeleteRecords);
        int failed = runner.run(Arrays.asList(args).subList(1, args.length), 4);
        System.exit(failed == 0 ? 0 : 1);
    }

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
}
