package dev.weir.compat;

import static dev.weir.compat.Check.expect;
import static dev.weir.compat.Check.expectEq;

import java.io.BufferedReader;
import java.io.InputStreamReader;
import java.nio.charset.StandardCharsets;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.ByteArraySerializer;

/**
 * The Java idempotent producer across a broker crash. Usage: {@code RestartChecks <bootstrap>}
 * with the test harness on the other end of stdin/stdout:
 *
 * <ol>
 *   <li>sends 300 records (acknowledged), then keeps sending asynchronously and prints
 *       {@code KILL_NOW} once 100 more are acknowledged, so batches are in flight;</li>
 *   <li>the harness kills the broker with SIGKILL, starts it again on the same port and data,
 *       and writes a line to stdin; meanwhile the producer retries what failed;</li>
 *   <li>after the line, 300 more; every send must succeed, and reading back must give each
 *       record exactly once, in send order per partition, at the offset it was acknowledged
 *       with: idempotence (duplicates of retried batches dropped by the state the broker
 *       rebuilt from its log) holds across the crash.</li>
 * </ol>
 */
public final class RestartChecks {
    public static void main(String[] args) throws Exception {
        String bootstrap = args[0];
        Check runner = new Check();
        runner.add("idempotent_produce_across_broker_kill", () -> acrossKill(bootstrap));
        int failed = runner.run(List.of());
        System.exit(failed == 0 ? 0 : 1);
    }

    static String acrossKill(String bootstrap) throws Exception {
        String topic = "java-restart";
        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 2, (short) 1))).all().get();
        }
        Properties p = new Properties();
        p.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        p.put(ProducerConfig.ENABLE_IDEMPOTENCE_CONFIG, true);
        p.put(ProducerConfig.ACKS_CONFIG, "all");
        p.put(ProducerConfig.LINGER_MS_CONFIG, 2);
        p.put(ProducerConfig.BATCH_SIZE_CONFIG, 2048);
        p.put(ProducerConfig.MAX_IN_FLIGHT_REQUESTS_PER_CONNECTION, 5);
        p.put(ProducerConfig.RECONNECT_BACKOFF_MS_CONFIG, 50);
        p.put(ProducerConfig.RECONNECT_BACKOFF_MAX_MS_CONFIG, 500);
        p.put(ProducerConfig.RETRY_BACKOFF_MS_CONFIG, 50);
        p.put(ProducerConfig.REQUEST_TIMEOUT_MS_CONFIG, 10_000);
        p.put(ProducerConfig.DELIVERY_TIMEOUT_MS_CONFIG, 60_000);
        p.put(ProducerConfig.MAX_BLOCK_MS_CONFIG, 60_000);
        List<ProducerRecord<byte[], byte[]>> records = new ArrayList<>();
        List<Future<RecordMetadata>> futures = new ArrayList<>();
        BufferedReader harness = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        try (KafkaProducer<byte[], byte[]> producer = new KafkaProducer<>(p, new ByteArraySerializer(), new ByteArraySerializer())) {
            int i = 0;
            for (; i < 300; i++) {
                send(producer, topic, i, records, futures);
            }
            producer.flush();
            for (; i < 400; i++) {
                send(producer, topic, i, records, futures);
            }
            // Wait for those 100 to be acknowledged while more keep going out, then ask for the kill.
            while (!futures.get(399).isDone()) {
                send(producer, topic, i++, records, futures);
                Thread.sleep(1);
            }
            for (int k = 0; k < 50; k++) {
                send(producer, topic, i++, records, futures);
            }
            System.out.println("KILL_NOW " + i);
            System.out.flush();
            // Keep sending while the broker is down and back (sends wait in the accumulator).
            String line = harness.readLine();
            expect(line != null, "the harness closed stdin before the broker was back");
            for (int k = 0; k < 300; k++) {
                send(producer, topic, i++, records, futures);
            }
            producer.flush();
        }
        List<Clients.Sent> sent = new ArrayList<>();
        for (int k = 0; k < records.size(); k++) {
            RecordMetadata md = futures.get(k).get();
            ProducerRecord<byte[], byte[]> r = records.get(k);
            List<org.apache.kafka.common.header.Header> headers = new ArrayList<>();
            r.headers().forEach(headers::add);
            sent.add(new Clients.Sent(md.partition(), md.offset(), r.key(), r.value(), headers, r.timestamp()));
        }
        Clients reader = new Clients(bootstrap);
        Map<TopicPartition, List<ConsumerRecord<byte[], byte[]>>> got =
                reader.readAll(List.of(new TopicPartition(topic, 0), new TopicPartition(topic, 1)));
        for (int part = 0; part < 2; part++) {
            final int pp = part;
            List<Clients.Sent> want = sent.stream().filter(s -> s.partition() == pp).toList();
            List<ConsumerRecord<byte[], byte[]>> have = got.get(new TopicPartition(topic, part));
            expectEq(want.size(), have.size(), "records in partition " + part + " (a duplicate or a loss)");
            for (int k = 0; k < want.size(); k++) {
                expectEq((long) k, want.get(k).offset(), "acknowledged offset #" + k + " of partition " + part);
                Clients.compare(want.get(k), have.get(k));
            }
        }
        return records.size() + " records, each once";
    }

    static void send(KafkaProducer<byte[], byte[]> producer, String topic, int i,
            List<ProducerRecord<byte[], byte[]>> records, List<Future<RecordMetadata>> futures) {
        ProducerRecord<byte[], byte[]> r = Clients.recordFor(topic, i % 2, i, Clients.BASE_TS + i);
        records.add(r);
        futures.add(producer.send(r));
    }
}
