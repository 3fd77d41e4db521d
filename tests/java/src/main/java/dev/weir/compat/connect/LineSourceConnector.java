package dev.weir.compat.connect;

import java.util.List;
import java.util.Map;
import org.apache.kafka.common.config.ConfigDef;
import org.apache.kafka.connect.connector.Task;
import org.apache.kafka.connect.source.SourceConnector;

/**
 * A source connector for the tests: each line of a UTF-8 text file becomes one record (value a
 * string, no key) on one topic, and its position (the number of lines already sent) is the
 * task's source offset, so a restarted worker carries on where the committed offset says.
 * Kafka's own FileStream connectors (org.apache.kafka:connect-file) do the same but are not
 * served by the package registry this project reaches. Config: {@code file}, {@code topic}.
 */
public final class LineSourceConnector extends SourceConnector {
    static final ConfigDef CONFIG = new ConfigDef()
            .define("file", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the file to read")
            .define("topic", ConfigDef.Type.STRING, ConfigDef.Importance.HIGH, "the topic to write");

    private Map<String, String> props;

    @Override
    public void start(Map<String, String> props) {
        this.props = Map.copyOf(props);
    }

    @Override
    public Class<? extends Task> taskClass() {
        return LineSourceTask.class;
    }

    @Override
    public List<Map<String, String>> taskConfigs(int maxTasks) {
        return List.of(props);
    }

    @Override
    public void stop() {}

    @Override
    public ConfigDef config() {
        return CONFIG;
    }

    @Override
    public String version() {
        return "1";
    }
}
