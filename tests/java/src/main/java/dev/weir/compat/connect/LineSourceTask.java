package dev.weir.compat.connect;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.ArrayList;
import java.util.List;
import java.util.Map;
import org.apache.kafka.connect.data.Schema;
import org.apache.kafka.connect.errors.ConnectException;
import org.apache.kafka.connect.source.SourceRecord;
import org.apache.kafka.connect.source.SourceTask;

/**
 * Sends the lines of {@code file} from the one after the last committed offset. Only whole
 * lines (ending in a newline) are sent, so a line being written is never cut. Source
 * partition {@code {file}}, offset {@code {line: lines sent}}.
 */
public final class LineSourceTask extends SourceTask {
    private Path file;
    private String topic;
    private Map<String, String> partition;
    private long sent;

    @Override
    public void start(Map<String, String> props) {
        file = Path.of(props.get("file"));
        topic = props.get("topic");
        partition = Map.of("file", file.toString());
        Map<String, Object> offset = context.offsetStorageReader().offset(partition);
        sent = offset == null ? 0 : ((Number) offset.get("line")).longValue();
    }

    @Override
    public List<SourceRecord> poll() throws InterruptedException {
        String text;
        try {
            text = Files.exists(file) ? Files.readString(file, StandardCharsets.UTF_8) : "";
        } catch (IOException e) {
            throw new ConnectException("reading " + file, e);
        }
        List<String> lines = new ArrayList<>();
        int start = 0;
        for (int nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', start)) {
            lines.add(text.substring(start, nl));
            start = nl + 1;
        }
        if (lines.size() <= sent) {
            Thread.sleep(100);
            return null;
        }
        List<SourceRecord> out = new ArrayList<>();
        for (long i = sent; i < lines.size() && out.size() < 100; i++) {
            out.add(new SourceRecord(partition, Map.of("line", i + 1), topic, null, null, Schema.STRING_SCHEMA, lines.get((int) i)));
        }
        sent += out.size();
        return out;
    }

    @Override
    public void stop() {}

    @Override
    public String version() {
        return "1";
    }
}
