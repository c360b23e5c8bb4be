"""A process that queries one tenant alias from several threads, then exits (flushing at exit).

Usage: burst.py ALIAS THREADS QUERIES_PER_THREAD FAIL_EVERY
Every FAIL_EVERY-th query of a thread reads a table the server lacks (a counted failure).
"""

import os
import sys
import threading

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "project.settings")

import django  # noqa: E402

django.setup()

from django.db import DatabaseError, connections  # noqa: E402


def work(alias: str, queries: int, fail_every: int, errors: list) -> None:
    try:
        for n in range(1, queries + 1):
            sql = "SELECT * FROM no_such_table" if n % fail_every == 0 else "SELECT 1"
            try:
                with connections[alias].cursor() as cursor:
                    cursor.execute(sql)
                    cursor.fetchall()
            except DatabaseError:
                if n % fail_every:
                    raise
    except Exception as exc:
        errors.append(exc)
    finally:
        connections.close_all()


def main() -> None:
    alias, threads, queries, fail_every = sys.argv[1], *map(int, sys.argv[2:5])
    errors: list = []
    workers = [threading.Thread(target=work, args=(alias, queries, fail_every, errors)) for _ in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    if errors:
        raise SystemExit(f"unexpected errors: {errors[:3]}")
    print("done", flush=True)


if __name__ == "__main__":
    main()
