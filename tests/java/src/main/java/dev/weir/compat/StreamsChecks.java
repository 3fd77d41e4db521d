package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.time.Duration;
import java.util.ArrayList;
import java.util.Arrays;
import java.util.HashMap;
import java.util.List;
import java.util.Locale;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.config.ConfigResource;
import org.apache.kafka.common.serialization.ByteArrayDeserializer;
import org.apache.kafka.common.serialization.LongDeserializer;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StoreQueryParameters;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KStream;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.QueryableStoreTypes;
import org.apache.kafka.streams.state.ReadOnlyKeyValueStore;

/**
 * Kafka Streams against a Weir broker: a word count with a RocksDB state store, so a
 * repartition topic (grouping by word) and a changelog topic (the store), at-least-once.
 * Usage: {@code StreamsChecks <bootstrap> <state dir> [check...]}.
 *
 * <p>The input is known, the record cache is off and nothing fails, so the output is exact:
 * for each word, the counts 1, 2, ..., n in order (all updates of a word are on one output
 * partition), nothing else; the changelog ends with each word's final count, and the store
 * answers the same through an interactive query.
 */
public final class StreamsChecks {
    static final String STORE = "counts-store";
    static final long DEADLINE_MS = 90_000;

    private final String bootstrap;
    private final String stateDir;

    /**
     * A state directory of its own for each application, created before Streams starts: the
     * checks run at once in this JVM, and Streams' check-then-mkdirs of a shared base directory
     * fails for all but the first that creates it.
     */
    private String stateDirOf(String app) {
        java.nio.file.Path dir = java.nio.file.Path.of(stateDir, app);
        try {
            java.nio.file.Files.createDirectories(dir);
        } catch (java.io.IOException e) {
            throw new java.io.UncheckedIOException(e);
        }
        return dir.toString();
    }

    StreamsChecks(String bootstrap, String stateDir) {
        this.bootstrap = bootstrap;
        this.stateDir = stateDir;
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: StreamsChecks <bootstrap> <state dir> [check...]");
            System.exit(2);
        }
        StreamsChecks s = new StreamsChecks(args[0], args[1]);
        Check runner = new Check();
        runner.add("streams_word_count", () -> s.wordCount("wordcount", false));
        runner.add("streams_word_count_broker_defaults", () -> s.wordCount("wordcount-defaults", true));
        runner.add("streams_exactly_once_refused", s::exactlyOnceRefused);
        int failed = runner.run(Arrays.asList(args).subList(2, args.length), 3);
        System.exit(failed == 0 ? 0 : 1);
    }

    /** The input: 200 lines over a small vocabulary, so every word is counted many times. */
    static List<String> lines() {
        String[] words = {"alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta", "iota", "kappa", "Lambda"};
        List<String> out = new ArrayList<>();
        for (int i = 0; i < 200; i++) {
            StringBuilder sb = new StringBuilder();
            for (int j = 0; j <= i % 6; j++) {
                sb.append(words[(i * 7 + j * 3) % words.length]).append(j % 2 == 0 ? " " : "  ");
            }
            out.add(sb.toString());
        }
        return out;
    }

    static List<String> split(String line) {
        List<String> out = new ArrayList<>();
        for (String w : line.toLowerCase(Locale.ROOT).split("\\W+")) {
            if (!w.isEmpty()) {
                out.add(w);
            }
        }
        return out;
    }

    /**
     * The word count, as application {@code weir-<name>} reading {@code <name>-lines} and
     * writing {@code <name>-counts}. With {@code brokerDefaults}, the internal topics are
     * created with the broker's own settings instead of Streams' per-topic overrides (changelog
     * {@code cleanup.policy=compact}; repartition {@code retention.ms=-1},
     * {@code segment.bytes=52428800}), for a broker that refuses per-topic configs.
     */
    String wordCount(String name, boolean brokerDefaults) throws Exception {
        String app = "weir-" + name;
        String inputTopic = name + "-lines";
        String outputTopic = name + "-counts";
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        Map<String, String> brokerConfig = new HashMap<>();
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(inputTopic, 3, (short) 1), new NewTopic(outputTopic, 2, (short) 1))).all().get();
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "0");
            admin.describeConfigs(List.of(broker)).all().get().get(broker).entries()
                    .forEach(e -> brokerConfig.put(e.name(), e.value()));
        }
        List<String> lines = lines();
        Map<String, Long> expected = new TreeMap<>();
        Map<String, List<Long>> expectedUpdates = new TreeMap<>();
        for (String line : lines) {
            for (String w : split(line)) {
                long n = expected.merge(w, 1L, Long::sum);
                expectedUpdates.computeIfAbsent(w, k -> new ArrayList<>()).add(n);
            }
        }
        // Input keyed by line number over 3 partitions, each line acknowledged in order.
        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < lines.size(); i++) {
                producer.send(new ProducerRecord<>(inputTopic, i % 3, "line-" + i, lines.get(i))).get();
            }
        }

        StreamsBuilder builder = new StreamsBuilder();
        KStream<String, String> input = builder.stream(inputTopic, Consumed.with(Serdes.String(), Serdes.String()));
        input.flatMapValues(StreamsChecks::split)
                .groupBy((key, word) -> word, Grouped.with("by-word", Serdes.String(), Serdes.String()))
                .count(Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as(STORE)
                        .withKeySerde(Serdes.String()).withValueSerde(Serdes.Long()))
                .toStream()
                .to(outputTopic, Produced.with(Serdes.String(), Serdes.Long()));

        Properties sp = new Properties();
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        sp.put(StreamsConfig.STATE_DIR_CONFIG, stateDirOf(app));
        sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.AT_LEAST_ONCE);
        sp.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, 100);
        sp.put(StreamsConfig.STATESTORE_CACHE_MAX_BYTES_CONFIG, 0);
        sp.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        sp.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        if (brokerDefaults) {
            sp.put(StreamsConfig.topicPrefix("cleanup.policy"), "delete");
            sp.put(StreamsConfig.topicPrefix("retention.ms"), retentionMs(brokerConfig));
            sp.put(StreamsConfig.topicPrefix("segment.bytes"), brokerConfig.get("log.segment.bytes"));
        }

        KafkaStreams streams = new KafkaStreams(builder.build(), sp);
        List<Throwable> errors = new ArrayList<>();
        streams.setUncaughtExceptionHandler(e -> {
            synchronized (errors) {
                errors.add(e);
            }
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        try {
            Map<String, List<Long>> updates = readOutput(outputTopic, expected, errors, streams);
            expectEq(expectedUpdates, updates, "output updates per word");

            // The store, through an interactive query.
            ReadOnlyKeyValueStore<String, Long> store =
                    streams.store(StoreQueryParameters.fromNameAndType(STORE, QueryableStoreTypes.keyValueStore()));
            Map<String, Long> inStore = new TreeMap<>();
            store.all().forEachRemaining(kv -> inStore.put(kv.key, kv.value));
            expectEq(expected, inStore, "state store contents");
        } finally {
            long closing = System.nanoTime();
            streams.close(Duration.ofSeconds(20));
            System.err.println(app + ": close took " + (System.nanoTime() - closing) / 1_000_000 + " ms");
        }

        // The internal topics exist and the changelog holds each word's final count last.
        Set<String> topics;
        try (Admin admin = Admin.create(ap)) {
            topics = admin.listTopics().names().get();
        }
        String changelog = app + "-" + STORE + "-changelog";
        String repartition = app + "-by-word-repartition";
        expect(topics.contains(changelog), "no changelog topic " + changelog + " in " + topics);
        expect(topics.contains(repartition), "no repartition topic " + repartition + " in " + topics);
        Map<String, Long> lastInChangelog = new TreeMap<>();
        for (ConsumerRecord<String, byte[]> r : readTopic(changelog)) {
            lastInChangelog.put(r.key(), r.value() == null ? null : new LongDeserializer().deserialize(changelog, r.value()));
        }
        expectEq(expected, lastInChangelog, "last value of each word in " + changelog);
        int total = expectedUpdates.values().stream().mapToInt(List::size).sum();
        return expected.size() + " words, " + total + " updates, exact";
    }

    /**
     * exactly_once_v2 needs transactions, which Weir does not have: the app must stop at once
     * with an error that says what is missing rather than hang. Its topics use the broker's
     * settings so that only the guarantee is in question.
     */
    String exactlyOnceRefused() throws Exception {
        String app = "weir-eos";
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        Map<String, String> brokerConfig = new HashMap<>();
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic("eos-in", 1, (short) 1), new NewTopic("eos-out", 1, (short) 1))).all().get();
            ConfigResource broker = new ConfigResource(ConfigResource.Type.BROKER, "0");
            admin.describeConfigs(List.of(broker)).all().get().get(broker).entries()
                    .forEach(e -> brokerConfig.put(e.name(), e.value()));
        }
        StreamsBuilder builder = new StreamsBuilder();
        builder.stream("eos-in", Consumed.with(Serdes.String(), Serdes.String()))
                .to("eos-out", Produced.with(Serdes.String(), Serdes.String()));
        Properties sp = new Properties();
        sp.put(StreamsConfig.APPLICATION_ID_CONFIG, app);
        sp.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        sp.put(StreamsConfig.STATE_DIR_CONFIG, stateDirOf(app));
        sp.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        sp.put(StreamsConfig.topicPrefix("retention.ms"), retentionMs(brokerConfig));
        sp.put(StreamsConfig.topicPrefix("segment.bytes"), brokerConfig.get("log.segment.bytes"));
        List<Throwable> errors = new ArrayList<>();
        long start = System.currentTimeMillis();
        KafkaStreams streams = new KafkaStreams(builder.build(), sp);
        streams.setUncaughtExceptionHandler(e -> {
            synchronized (errors) {
                errors.add(e);
            }
            return org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.start();
        try {
            while (true) {
                synchronized (errors) {
                    if (!errors.isEmpty()) {
                        String msg = Check.describe(errors.get(0));
                        // With OffsetFetch v7 served (require_stable), Streams gets as far as its
                        // transactional producer, whose InitProducerId the broker refuses; against
                        // a broker without v7 it stops earlier, at its first stable offset fetch.
                        expect(msg.contains("RequireStable") || msg.contains("TransactionalIdAuthorizationException"),
                                "the app failed, but not for want of transactions: " + msg);
                        return "refused after " + (System.currentTimeMillis() - start) + " ms: " + msg;
                    }
                }
                expect(System.currentTimeMillis() - start < 60_000, "no error within 60 s; state " + streams.state());
                Thread.sleep(100);
            }
        } finally {
            streams.close(Duration.ofSeconds(20));
        }
    }

    /**
     * The broker's retention in milliseconds, as Kafka derives it: `log.retention.ms`, else
     * `log.retention.minutes`, else `log.retention.hours` (Kafka's broker leaves the first two
     * unset, null in DescribeConfigs, and sets the hours; Weir reports the milliseconds).
     */
    static String retentionMs(Map<String, String> brokerConfig) {
        if (brokerConfig.get("log.retention.ms") != null) {
            return brokerConfig.get("log.retention.ms");
        }
        if (brokerConfig.get("log.retention.minutes") != null) {
            return String.valueOf(Long.parseLong(brokerConfig.get("log.retention.minutes")) * 60_000L);
        }
        return String.valueOf(Long.parseLong(brokerConfig.get("log.retention.hours")) * 3_600_000L);
    }

    /** Reads the output until every word reached its expected count (then a little longer). */
    Map<String, List<Long>> readOutput(String outputTopic, Map<String, Long> expected, List<Throwable> errors, KafkaStreams streams)
            throws Exception {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        Map<String, List<Long>> updates = new TreeMap<>();
        Map<String, Long> latest = new HashMap<>();
        try (KafkaConsumer<String, Long> c = new KafkaConsumer<>(cp, new StringDeserializer(), new LongDeserializer())) {
            List<TopicPartition> tps = List.of(new TopicPartition(outputTopic, 0), new TopicPartition(outputTopic, 1));
            c.assign(tps);
            c.seekToBeginning(tps);
            long deadline = System.currentTimeMillis() + DEADLINE_MS;
            long settleUntil = Long.MAX_VALUE;
            while (System.currentTimeMillis() < settleUntil) {
                synchronized (errors) {
                    expect(errors.isEmpty(), "the Streams app failed: " + (errors.isEmpty() ? "" : Check.describe(errors.get(0))));
                }
                expect(System.currentTimeMillis() < deadline,
                        "timed out: state " + streams.state() + ", latest counts " + new TreeMap<>(latest) + ", expected " + expected);
                for (ConsumerRecord<String, Long> r : c.poll(Duration.ofMillis(200))) {
                    updates.computeIfAbsent(r.key(), k -> new ArrayList<>()).add(r.value());
                    latest.put(r.key(), r.value());
                }
                if (settleUntil == Long.MAX_VALUE && latest.equals(expected)) {
                    // Anything extra (a duplicate, a wrong count) would come soon after.
                    settleUntil = System.currentTimeMillis() + 1_000;
                }
            }
        }
        return updates;
    }

    List<ConsumerRecord<String, byte[]>> readTopic(String topic) {
        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        List<ConsumerRecord<String, byte[]>> out = new ArrayList<>();
        try (KafkaConsumer<String, byte[]> c = new KafkaConsumer<>(cp, new StringDeserializer(), new ByteArrayDeserializer())) {
            List<TopicPartition> tps = new ArrayList<>();
            c.partitionsFor(topic).forEach(p -> tps.add(new TopicPartition(topic, p.partition())));
            c.assign(tps);
            c.seekToBeginning(tps);
            Map<TopicPartition, Long> end = c.endOffsets(tps);
            long deadline = System.currentTimeMillis() + 30_000;
            while (tps.stream().anyMatch(tp -> c.position(tp) < end.get(tp))) {
                expect(System.currentTimeMillis() < deadline, "timed out reading " + topic);
                c.poll(Duration.ofMillis(100)).forEach(out::add);
            }
        }
        return out;
    }
}
