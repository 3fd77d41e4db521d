#!/usr/bin/env bash
# Apache Kafka as the reference broker: a single-node KRaft broker (combined broker and
# controller) from Kafka's own jars on Maven Central, for the benchmarks (bench/run.sh --peer
# kafka) and the compatibility suite (WEIR_COMPAT_BROKER=kafka).
#
#   bench/peers/kafka.sh fetch                 # resolve the jars into .cache/ (once)
#   bench/peers/kafka.sh classpath             # print the classpath (fetching if needed)
#   bench/peers/kafka.sh start DIR [KEY=VALUE...]
#        formats a broker in DIR (created if missing), starts it on a free port of 127.0.0.1,
#        waits until it accepts connections and prints `bootstrap=127.0.0.1:PORT`, `pid=PID`
#        and `startup_ms=MS` (JVM spawn to accepting connections, the format not included);
#        extra KEY=VALUE pairs go into its server.properties (e.g. flush.messages=1).
#   bench/peers/kafka.sh stop DIR              # SIGTERM, then waits for it to exit
#
# Durability: Kafka acknowledges a produce before fsync by default (the page cache and the
# replicas are its durability); `flush.messages=1` makes it fsync each batch before acks.
# Environment: KAFKA_VERSION (default 4.4.0), KAFKA_HEAP (default -Xmx512m -Xms512m),
# KAFKA_PORT (default: a free port), KAFKA_START_TIMEOUT (seconds, default 90).
set -euo pipefail
root="$(cd "$(dirname "$0")/../.." && pwd)"
version="${KAFKA_VERSION:-4.4.0}"
cache="$root/.cache/peers"
cp_file="$cache/kafka-$version.classpath"

fetch() {
    mkdir -p "$cache"
    if [ ! -s "$cp_file" ]; then
        mvn -q -B -Dstyle.color=never -Dmaven.repo.local="$root/.cache/m2" -Dkafka.version="$version" \
            -Dweir.peer.classpath="$cp_file" -f "$root/bench/peers/kafka-pom.xml" \
            dependency:build-classpath >&2
    fi
    # A classpath that names a jar no longer in the cache is resolved again.
    local jar
    for jar in $(tr ':' ' ' <"$cp_file"); do
        if [ ! -f "$jar" ]; then
            rm -f "$cp_file"
            fetch
            return
        fi
    done
}

classpath() {
    fetch
    local jar
    jar=$(ls "$root/.cache/m2/org/apache/kafka/kafka_2.13/$version/kafka_2.13-$version.jar")
    printf '%s:%s\n' "$jar" "$(cat "$cp_file")"
}

free_port() {
    python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

java_opts() {
    # Small heap: the machine is small. Kafka logs through SLF4J; slf4j-simple at WARN to
    # stderr (the broker's log file).
    echo "${KAFKA_HEAP:--Xmx512m -Xms512m} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
-Djava.awt.headless=true -Dorg.slf4j.simpleLogger.defaultLogLevel=warn"
}

start() {
    local dir="${1:?usage: kafka.sh start DIR [KEY=VALUE...]}"
    shift
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"
    local cp port cport
    cp=$(classpath)
    port="${KAFKA_PORT:-$(free_port)}"
    cport=$(free_port)
    cat >"$dir/server.properties" <<PROPS
process.roles=broker,controller
node.id=0
controller.quorum.voters=0@127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$dir/data
num.partitions=1
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
auto.create.topics.enable=true
PROPS
    local kv
    for kv in "$@"; do
        echo "$kv" >>"$dir/server.properties"
    done
    local opts
    opts=$(java_opts)
    # shellcheck disable=SC2086
    java $opts -cp "$cp" kafka.tools.StorageTool format \
        --config "$dir/server.properties" --cluster-id "$(java -cp "$cp" kafka.tools.StorageTool random-uuid 2>/dev/null)" \
        >"$dir/format.log" 2>&1 || {
        cat "$dir/format.log" >&2
        echo "error: kafka-storage format failed" >&2
        exit 1
    }
    local t0=$EPOCHREALTIME
    # shellcheck disable=SC2086
    setsid java $opts -cp "$cp" kafka.Kafka "$dir/server.properties" >"$dir/kafka.log" 2>&1 </dev/null &
    local pid=$!
    echo "$pid" >"$dir/kafka.pid"
    echo "$port" >"$dir/kafka.port"
    local deadline=$((SECONDS + ${KAFKA_START_TIMEOUT:-90}))
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! kill -0 "$pid" 2>/dev/null; then
            tail -30 "$dir/kafka.log" >&2
            echo "error: Kafka exited during start-up (log: $dir/kafka.log)" >&2
            exit 1
        fi
        if [ "$SECONDS" -gt "$deadline" ]; then
            echo "error: Kafka did not accept connections within ${KAFKA_START_TIMEOUT:-90} s" >&2
            kill -TERM "$pid" 2>/dev/null || true
            exit 1
        fi
        sleep 0.05
    done
    echo "bootstrap=127.0.0.1:$port"
    echo "pid=$pid"
    # Spawn of the JVM to accepting connections (the format before it not included).
    echo "startup_ms=$(awk "BEGIN { printf \"%d\", ($EPOCHREALTIME - $t0) * 1000 }")"
}

stop() {
    local dir="${1:?usage: kafka.sh stop DIR}"
    [ -f "$dir/kafka.pid" ] || { echo "error: no kafka.pid in $dir" >&2; exit 1; }
    local pid
    pid=$(cat "$dir/kafka.pid")
    if kill -TERM "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + 60))
        while kill -0 "$pid" 2>/dev/null; do
            if [ "$SECONDS" -gt "$deadline" ]; then
                echo "warning: Kafka (pid $pid) still running after 60 s; SIGKILL" >&2
                kill -KILL "$pid" 2>/dev/null || true
                break
            fi
            sleep 0.1
        done
    fi
    rm -f "$dir/kafka.pid"
}

case "${1:-}" in
fetch) fetch ;;
classpath) classpath ;;
start) shift; start "$@" ;;
stop) shift; stop "$@" ;;
*)
    sed -n '2,20p' "$0" | sed 's/^# \{0,1\}//'
    exit 2
    ;;
esac
