"""A separate client process for the log tests: `python _appender.py URL NAME COUNT`.

Opens its own store, prints "ready", waits for one line on stdin (so all processes start
together), appends COUNT entries and prints one JSON line per acknowledged commit.
"""

from __future__ import annotations

import json
import sys

from metafuse.objectstore import CommitLog, open_store


def main() -> int:
    url, name, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
    store = open_store(url)
    log = CommitLog(store, "cat")
    print("ready", flush=True)
    sys.stdin.readline()
    for i in range(count):
        result = log.append({"writer": name, "i": i})
        print(json.dumps({"commit_id": result.commit_id, "sequence": result.sequence}), flush=True)
    store.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
