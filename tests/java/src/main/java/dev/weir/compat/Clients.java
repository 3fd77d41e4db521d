package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.lang.reflect.Method;
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.util.ArrayList;
import java.util.Collection;
import java.util.HashMap;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.TreeMap;
import java.util.concurrent.Future;
import java.util.stream.Collectors;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.ConsumerGroupDescription;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.ConsumerRecords;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.header.Header;
import org.apache.kafka.common.header.internals.RecordHeader;
import org.apache.kafka.common.record.TimestampType;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * What the Java client checks share: the clients (Admin, an idempotent {@code acks=all}
 * producer, a consumer), the test records (null keys, empty, null and large values, headers
 * with null values and repeated keys), sending with every acknowledgement awaited, reading
 * partitions to their end, and the exact comparison of a record read with the one sent
 * (partition, offset, key, value, headers, timestamp and its type).
 *
 * <p>The same source compiles against kafka-clients 3.9 and 4.x; where the two differ (the
 * group state accessor), reflection picks whichever exists.
 */
class Clients {
    static final Duration POLL = Duration.ofMillis(100);
    static final long DEADLINE_MS = 30_000;
    static final long BASE_TS = 1_700_000_000_000L;

    final String bootstrap;

    Clients(String bootstrap) {
        this.bootstrap = bootstrap;
    }

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
}
