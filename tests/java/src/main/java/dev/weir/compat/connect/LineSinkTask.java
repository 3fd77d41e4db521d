package dev.weir.compat.connect;

import java.io.IOException;
import java.io.OutputStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Collection;
import java.util.Map;
import org.apache.kafka.clients.consumer.OffsetAndMetadata;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.sink.SinkRecord;
import org.apache.kafka.connect.sink.SinkTask;

/** Appends each record's value and a newline; flushes before Connect commits the offsets. */
public final class LineSinkTask extends SinkTask {
    private OutputStream out;
    private Path file;

    @Override
    public void start(Map<String, String> props) {
        file = Path.of(props.get("file"));
        try {
            out = Files.newOutputStream(file, StandardOpenOption.CREATE, StandardOpenOption.APPEND);
        } catch (IOException e) {
            throw new ConnectException("opening " + file, e);
        }
    }

    @Override
    public void put(Collection<SinkRecord> records) {
        try {
            for (SinkRecord r : records) {
                out.write((r.value() + "\n").getBytes(StandardCharsets.UTF_8));
            }
        } catch (IOException e) {
            throw new ConnectException("writing " + file, e);
        }
    }

    @Override
    public void flush(Map<TopicPartition, OffsetAndMetadata> offsets) {
        try {
            out.flush();
        } catch (IOException e) {
            throw new ConnectException("flushing " + file, e);
        }
    }

    @Override
    public void stop() {
        try {
            out.close();
        } catch (IOException e) {
            throw new ConnectException("closing " + file, e);
        }
    }

    @Override
    public String version() {
        return "1";
    }
}
