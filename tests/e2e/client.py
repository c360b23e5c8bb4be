"""An application process for end-to-end tests: queries a tenant alias through Django.

`loop` queries until a line arrives on stdin, printing one JSON line per query;
`requests` does the same, closing old connections before each query as Django does at the
start of a request (so a connection broken by a server restart is replaced, not reused);
`idle` queries once, waits for a line on stdin, queries once more, and exits.
The alias argument may name several aliases, comma-separated: each loop queries each in turn.
"""

import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.db import close_old_connections, connections  # noqa: E402


def query(alias: str) -> dict:
    started = time.time()
    try:
        with connections[alias].cursor() as cursor:
            cursor.execute("SELECT inet_server_port(), first_name, last_name FROM test_app_users")
            rows = cursor.fetchall()
        return {"t": started, "ok": True, "port": rows[0][0], "rows": len(rows)}
    except Exception as exc:
        return {"t": started, "ok": False, "error": type(exc).__name__, "message": str(exc).splitlines()[0]}


def port_only(alias: str) -> dict:
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT inet_server_port()")
        return {"t": time.time(), "ok": True, "port": cursor.fetchone()[0]}


def main() -> None:
    mode, alias = sys.argv[1], sys.argv[2]
    if mode in ("loop", "requests"):
        aliases = alias.split(",")
        stop = threading.Event()
        threading.Thread(target=lambda: (sys.stdin.readline(), stop.set()), daemon=True).start()
        while not stop.is_set():
            for name in aliases:
                if mode == "requests":
                    close_old_connections()
                print(json.dumps({"alias": name, **query(name)}), flush=True)
            time.sleep(0.02)
    else:
        # Never runs a failing query: this process learns of the failover only from Redis.
        print(json.dumps(port_only(alias)), flush=True)
        sys.stdin.readline()
        print(json.dumps(port_only(alias)), flush=True)


if __name__ == "__main__":
    main()
