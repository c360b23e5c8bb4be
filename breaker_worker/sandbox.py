"""Throwaway PostgreSQL and Redis servers on free local ports, for the demo and the tests.

PostgreSQL refuses to run as root, so as root the cluster is created and run as the
``postgres`` user. Each server lives in its own temporary directory and is removed on stop.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path


def port_is_free(port: int) -> bool:
    with socket.socket() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def free_port(preferred: int | None = None) -> int:
    if preferred and port_is_free(preferred):
        return preferred
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return
        time.sleep(0.05)
    raise TimeoutError(f"nothing answered on 127.0.0.1:{port} within {timeout:g}s")


def postgres_bin(name: str) -> str:
    found = shutil.which(name)
    if found:
        return found
    for candidate in sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"), reverse=True):
        return str(candidate)
    raise FileNotFoundError(f"{name} not found: install PostgreSQL server binaries (Debian: postgresql)")


@dataclass
class PostgresServer:
    """A private PostgreSQL cluster with trust auth for user ``postgres``."""

    port: int
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tb-pg-")))
    process: subprocess.Popen | None = None

    def _run_as(self) -> dict:
        if os.geteuid() != 0:
            return {}
        user = pwd.getpwnam("postgres")
        return {"user": user.pw_uid, "group": user.pw_gid}

    def start(self) -> PostgresServer:
        data = self.directory / "data"
        run_as = self._run_as()
        if run_as:
            os.chown(self.directory, run_as["user"], run_as["group"])
        subprocess.run(
            [postgres_bin("initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"],
            check=True,
            capture_output=True,
            **run_as,
        )
        return self.resume()

    def resume(self) -> PostgresServer:
        """Start the server on its existing data (after halt())."""
        self.process = subprocess.Popen(
            [
                postgres_bin("postgres"),
                "-D",
                str(self.directory / "data"),
                "-p",
                str(self.port),
                "-h",
                "127.0.0.1",
                "-k",
                str(self.directory),
                "-c",
                "fsync=off",
                "-c",
                "full_page_writes=off",
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.directory / "server.log", "ab"),
            **self._run_as(),
        )
        wait_for_port(self.port)
        self.wait_ready()
        return self

    def halt(self) -> None:
        """Stop the server at once, keeping its data: a crash or a restart, as clients see it."""
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGQUIT)  # immediate shutdown, like a crash
            self.process.wait(15)

    def wait_ready(self, timeout: float = 30.0) -> None:
        import psycopg2

        deadline = time.monotonic() + timeout
        while True:
            try:
                psycopg2.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres").close()
                return
            except psycopg2.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()  # SIGTERM: smart shutdown; fast enough for a test cluster
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class RedisServer:
    port: int
    directory: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="tb-redis-")))
    process: subprocess.Popen | None = None

    def start(self) -> RedisServer:
        binary = shutil.which("redis-server")
        if binary is None:
            raise FileNotFoundError("redis-server not found: install Redis (Debian: redis-server)")
        self.directory.mkdir(parents=True, exist_ok=True)  # stop() removes it; start() may follow
        self.process = subprocess.Popen(
            [
                binary,
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        wait_for_port(self.port)
        return self

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        shutil.rmtree(self.directory, ignore_errors=True)


def execute(port: int, dbname: str, *statements: str, autocommit: bool = True) -> None:
    import psycopg2

    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname=dbname)
    connection.autocommit = autocommit
    try:
        with connection.cursor() as cursor:
            for statement in statements:
                cursor.execute(statement)
        if not autocommit:
            connection.commit()
    finally:
        connection.close()


SEED_TABLE = (
    "CREATE TABLE test_app_users (first_name text NOT NULL, last_name text NOT NULL)",
    "INSERT INTO test_app_users VALUES ('Ada', 'Lovelace'), ('Alan', 'Turing'), ('Grace', 'Hopper')",
)


def create_database(port: int, dbname: str, with_seed_table: bool) -> None:
    """(Re)create ``dbname`` on the server at ``port``; optionally with the seed's table."""
    execute(port, "postgres", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)', f'CREATE DATABASE "{dbname}"')
    if with_seed_table:
        execute(port, dbname, *SEED_TABLE)


def drop_database(port: int, dbname: str) -> None:
    execute(port, "postgres", f'DROP DATABASE IF EXISTS "{dbname}" WITH (FORCE)')


@contextlib.contextmanager
def running(server) -> Iterator:
    server.start()
    try:
        yield server
    finally:
        server.stop()
