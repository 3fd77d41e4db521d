"""One confluent-kafka group consumer, run as its own process by test_groups.py so that the test
can SIGKILL it (a member that vanishes without a LeaveGroup).

    python group_member.py '<json spec>'

The spec: {"config": {librdkafka consumer settings}, "topics": [...], "wait_for_go": bool}.

Everything it sees goes to stdout, one JSON object per line, in the order it happened:

    {"ev": "ready"}                          imported and about to create the consumer
    {"ev": "assign", "parts": [...], "member": id}   on_assign (eager: the whole new assignment;
    {"ev": "revoke", "parts": [...]}         cooperative: the increment), on_revoke, on_lost
    {"ev": "lost", "parts": [...]}
    {"ev": "recs", "r": [[partition, offset, id], ...]}   records, in consumption order
    {"ev": "error", "msg": "..."}            any consumer error or malformed record
    {"ev": "committed", "offsets": {partition: offset}}   answer to the "commit" command
    {"ev": "closed"}

Commands on stdin, one per line: "go" (when wait_for_go), "commit" (synchronous commit of the
consumed positions, then the committed offsets of the current assignment are read back), and
"close" (consumer.close(), which commits and leaves the group, then exit).

Record values are b"<id>" and keys b"key-<id % keys>" (checked here; "keys" in the spec).
"""

from __future__ import annotations

import json
import queue
import sys
import threading


def emit(obj) -> None:
    sys.stdout.write(json.dumps(obj, separators=(",", ":")) + "\n")
    sys.stdout.flush()


def main() -> int:
    spec = json.loads(sys.argv[1])
    from confluent_kafka import Consumer, KafkaError

    commands: queue.Queue[str] = queue.Queue()

    def read_stdin() -> None:
        for line in sys.stdin:
            commands.put(line.strip())
        commands.put("eof")

    threading.Thread(target=read_stdin, daemon=True).start()
    emit({"ev": "ready"})
    if spec.get("wait_for_go"):
        while commands.get() != "go":
            pass

    keys = spec.get("keys")

    def parts(partitions) -> list[int]:
        return sorted(tp.partition for tp in partitions)

    def on_assign(consumer, partitions):
        emit({"ev": "assign", "parts": parts(partitions), "member": consumer.memberid()})

    def on_revoke(_consumer, partitions):
        emit({"ev": "revoke", "parts": parts(partitions)})

    def on_lost(_consumer, partitions):
        emit({"ev": "lost", "parts": parts(partitions)})

    def on_error(err):
        # Transport errors the client recovers from on its own are reported too: the test
        # decides what is acceptable.
        emit({"ev": "client_error", "msg": str(err)})

    config = dict(spec["config"])
    config["error_cb"] = on_error
    consumer = Consumer(config)
    consumer.subscribe(spec["topics"], on_assign=on_assign, on_revoke=on_revoke, on_lost=on_lost)
    try:
        while True:
            try:
                command = commands.get_nowait()
            except queue.Empty:
                command = None
            if command == "commit":
                try:
                    consumer.commit(asynchronous=False)
                except Exception as err:  # noqa: BLE001 - reported, the test fails on it
                    # Nothing consumed since the last commit: not an error.
                    if "_NO_OFFSET" not in str(err):
                        emit({"ev": "error", "msg": f"commit failed: {err}"})
                assignment = consumer.assignment()
                committed = consumer.committed(assignment, timeout=10) if assignment else []
                emit({
                    "ev": "committed",
                    "offsets": {str(tp.partition): tp.offset for tp in committed},
                    "errors": [str(tp.error) for tp in committed if tp.error is not None],
                })
                continue
            if command in ("close", "eof"):
                consumer.close()
                emit({"ev": "closed"})
                return 0
            batch = []
            for msg in consumer.consume(num_messages=2000, timeout=0.1):
                err = msg.error()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        continue
                    emit({"ev": "error", "msg": f"consume: {err}"})
                    continue
                try:
                    ident = int(msg.value())
                except (TypeError, ValueError):
                    emit({"ev": "error", "msg": f"bad value {msg.value()!r} at "
                          f"{msg.partition()}@{msg.offset()}"})
                    continue
                if keys is not None and msg.key() != b"key-%d" % (ident % keys):
                    emit({"ev": "error", "msg": f"record {ident}: key {msg.key()!r}"})
                batch.append([msg.partition(), msg.offset(), ident])
            if batch:
                emit({"ev": "recs", "r": batch})
    except BaseException as err:  # noqa: BLE001
        emit({"ev": "error", "msg": f"crashed: {err!r}"})
        raise


if __name__ == "__main__":
    sys.exit(main())
