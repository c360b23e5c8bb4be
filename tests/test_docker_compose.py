"""docker-compose.yml, checked without a Docker engine: Debian's docker-compose validates and
resolves it (`config`), and every command it runs is tried here (gunicorn loads the app, celery
loads the project, manage.py knows each command). The seed itself is replayed without Docker:
two throwaway PostgreSQL servers loaded with the file's own init scripts stand in for postgres_1
and postgres_2, and migrate's registration and the traffic service's command run against them."""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import psycopg2
import pytest
import yaml

from breaker_worker.sandbox import PostgresServer, free_port, postgres_bin

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICES = {"postgres_1", "postgres_2", "control_db", "redis", "migrate", "web", "worker", "beat", "traffic"}
APP_SERVICES = ["web", "worker", "beat", "traffic"]


def compose_config(path: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    compose = shutil.which("docker-compose")
    assert compose, (
        "docker-compose is not installed; scripts/setup installs Debian's docker-compose package "
        "(apt-get install docker-compose), which validates a compose file without a Docker engine"
    )
    return subprocess.run([compose, "-f", str(path), "config"], capture_output=True, text=True, timeout=60, env=env)


@pytest.fixture(scope="module")
def services() -> dict:
    result = compose_config(ROOT / "docker-compose.yml")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)["services"]


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "project.settings",
        "TENANTBREAKER_VAR_DIR": str(tmp_path_factory.mktemp("compose")),
    }


def run(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    return subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def steps(service: dict) -> list[list[str]]:
    """The commands of a service, one argv each (``sh -c "a && b"`` gives a and b)."""
    command = service["command"]
    argv = shlex.split(command) if isinstance(command, str) else command
    if argv[:2] == ["sh", "-c"]:
        return [shlex.split(step) for step in argv[2].split("&&")]
    return [argv]


def published(service: dict) -> list[tuple[int, int]]:
    return [(int(port["published"]), int(port["target"])) for port in service.get("ports", [])]


def init_script_path(service: dict) -> Path:
    [volume] = service["volumes"]
    source, target = volume.split(":")[:2]
    assert target == "/docker-entrypoint-initdb.d/init.sql"
    path = Path(source)
    assert path.is_file() and path.is_relative_to(ROOT), f"{source} is not a file of this repository"
    return path


def init_script(service: dict) -> str:
    return init_script_path(service).read_text()


@pytest.fixture(scope="module")
def seed(services):
    """postgres_1 and postgres_2, played by throwaway servers: each runs its init script with
    psql, as the postgres image does (``\\connect`` is a psql command). Name -> port."""
    servers: dict[str, PostgresServer] = {}
    try:
        for name in ("postgres_1", "postgres_2"):
            server = servers[name] = PostgresServer(free_port()).start()
            psql = [postgres_bin("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1"]
            script = init_script_path(services[name])
            result = subprocess.run(
                [*psql, "-p", str(server.port), "-U", "postgres", "-d", "postgres", "-f", str(script)],
                capture_output=True,
                text=True,
                timeout=60,
            )
            assert result.returncode == 0, f"{script.name}: {result.stderr}"
        yield {name: server.port for name, server in servers.items()}
    finally:
        for server in servers.values():
            server.stop()


def in_seed(argv: list[str], seed: dict[str, int]) -> list[str]:
    """A compose command with the servers' compose addresses replaced by the stand-ins'."""
    for name, port in seed.items():
        argv = [arg.replace(f"@{name}:5432/", f"@127.0.0.1:{port}/") for arg in argv]
    return argv


def seed_rows(port: int) -> list[tuple] | None:
    """The rows of test_app_users in database tenant1, None when there is no such table."""
    connection = psycopg2.connect(host="127.0.0.1", port=port, user="postgres", dbname="tenant1")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT to_regclass('test_app_users') IS NOT NULL")
            if not cursor.fetchone()[0]:
                return None
            cursor.execute("SELECT first_name, last_name FROM test_app_users ORDER BY 1")
            return cursor.fetchall()
    finally:
        connection.close()


@pytest.fixture(scope="module")
def app_env(env, redis_server, tmp_path_factory):
    """The environment of the app services, on this machine: a migrated SQLite control DB of its
    own and a private Redis instead of control_db and redis."""
    directory = tmp_path_factory.mktemp("control")
    app = {
        **env,
        "TENANTBREAKER_VAR_DIR": str(directory),
        "DATABASE_URL": f"sqlite:///{directory / 'control.sqlite3'}",
        "REDIS_URL": redis_server.url.rsplit("/", 1)[0] + "/7",
        "DJANGO_DEBUG": "0",
    }
    app.pop("CELERY_BROKER_URL", None)
    app.pop("PROMETHEUS_MULTIPROC_DIR", None)
    result = run([str(BIN / "python"), "manage.py", "migrate", "--noinput", "--verbosity", "0"], app)
    assert result.returncode == 0, result.stderr
    return app


def wait_for_line(log: Path, text: str, process: subprocess.Popen, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while text not in log.read_text():
        assert process.poll() is None, f"traffic exited early:\n{log.read_text()}"
        assert time.monotonic() < deadline, f"no {text!r} within {timeout:g}s:\n{log.read_text()}"
        time.sleep(0.05)


def manage(argv: list[str], env: dict) -> subprocess.CompletedProcess:
    """A compose ``python manage.py ...`` command, run with this virtualenv's python."""
    assert argv[:2] == ["python", "manage.py"], argv
    return run([str(BIN / "python"), *argv[1:]], env)


def test_a_broken_file_is_refused(tmp_path):
    broken = tmp_path / "docker-compose.yml"
    broken.write_text("services:\n  web:\n    image: x\n    ports: 8000\n    depends_on: [nothing]\n")
    assert compose_config(broken).returncode != 0


def test_the_services_of_the_seed(services):
    assert set(services) == SERVICES


def test_postgres_1_is_server_a_with_the_table(services):
    server = services["postgres_1"]
    assert server["image"] == "postgres:13.5-alpine"
    assert published(server) == [(5000, 5432)]
    assert "CREATE TABLE test_app_users" in init_script(server)
    assert "INSERT INTO test_app_users" in init_script(server)


def test_postgres_2_is_server_b_without_it(services):
    server = services["postgres_2"]
    assert server["image"] == "postgres:13.5-alpine"
    assert published(server) == [(5432, 5432)]
    script = init_script(server)
    assert "CREATE DATABASE tenant1" in script and "test_app_users" not in script.split("\n", 1)[1]


def test_the_init_scripts_give_postgres_1_the_rows_and_postgres_2_only_the_database(seed):
    assert seed_rows(seed["postgres_1"]) == [("Ada", "Lovelace"), ("Alan", "Turing"), ("Grace", "Hopper")]
    assert seed_rows(seed["postgres_2"]) is None


def test_redis(services):
    assert services["redis"]["image"].startswith("redis:")
    assert services["redis"]["healthcheck"]["test"] == ["CMD", "redis-cli", "ping"]


@pytest.mark.parametrize("name", ["postgres_1", "postgres_2", "control_db"])
def test_postgres_is_healthy_only_once_its_init_script_ran(services, name):
    # The image runs init scripts on a temporary server listening on its Unix socket only: a
    # check over TCP cannot pass before the script is done (pg_isready alone would).
    argv = services[name]["healthcheck"]["test"]
    assert argv[:2] == ["CMD", "pg_isready"]
    assert argv[argv.index("-h") + 1] == "127.0.0.1"


def test_migrate_registers_tenant_1_on_postgres_2_with_postgres_1_as_candidate(services, env):
    migrate = services["migrate"]
    commands = [argv for argv in steps(migrate) if argv[0] != "find"]  # find: see the metrics test
    assert [argv[:3] for argv in commands] == [
        ["python", "manage.py", "migrate"],
        ["python", "manage.py", "tenant_db"],
        ["python", "manage.py", "shell"],
    ]
    tenant_db = commands[1]
    assert tenant_db[3:5] == ["set", "1-default"]
    assert [url.split("@")[1] for url in tenant_db[5:7]] == ["postgres_2:5432/tenant1", "postgres_1:5432/tenant1"]
    assert "--if-absent" in tenant_db  # a later `up` must not undo a failover
    assert migrate["depends_on"] == {
        name: {"condition": "service_healthy"} for name in ("control_db", "postgres_1", "postgres_2", "redis")
    }
    for argv in commands:  # each command exists and accepts these arguments
        result = run([str(BIN / "python"), "manage.py", argv[2], "--help"], env)
        assert result.returncode == 0, result.stderr


def test_the_seed_replayed_with_migrate_and_traffic_and_a_second_up_keeps_the_failover(
    services, seed, app_env, tmp_path
):
    """What `docker compose up` does, step by step, with the compose file's own commands; the
    worker's failover on the trip is done here by the operator's breaker_failover."""
    b, a = f"127.0.0.1:{seed['postgres_2']}", f"127.0.0.1:{seed['postgres_1']}"
    register = in_seed([argv for argv in steps(services["migrate"]) if "tenant_db" in argv][0], seed)
    [traffic] = steps(services["traffic"])
    assert traffic[:4] == ["python", "manage.py", "tenant_traffic", "1-default"]

    first = manage(register, app_env)  # the first `up`: 1-default is created on postgres_2
    assert first.returncode == 0, first.stderr
    assert first.stdout.splitlines() == [
        "1-default: generation 1",
        f"  active   postgres@{b}/tenant1",
        f"  failover postgres@{a}/tenant1",
    ]

    counted = manage([*traffic, "--count", "3", "--interval", "0"], app_env)
    assert counted.returncode == 0, counted.stderr
    missing = f'ProgrammingError on {b}: relation "test_app_users" does not exist'
    assert counted.stdout.count(missing) == 3, counted.stdout
    assert "3 queries: 0 ok, 3 failed, 0 rejected" in counted.stdout

    # As the service runs it: on and on, through the failover (the worker's, on the trip; the
    # operator's here), reconnecting to postgres_1 by itself; stopped by SIGTERM (docker stop).
    log = tmp_path / "traffic.log"
    with log.open("w") as out:
        process = subprocess.Popen(
            [str(BIN / "python"), *traffic[1:]], cwd=ROOT, env=app_env, stdout=out, stderr=subprocess.STDOUT
        )
    try:
        wait_for_line(log, missing, process)
        moved = manage(["python", "manage.py", "breaker_failover", "1-default"], app_env)
        assert moved.returncode == 0, moved.stderr
        wait_for_line(log, f"ok, 3 rows from {a}: Ada Lovelace, Alan Turing, Grace Hopper", process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(20) == 0, log.read_text()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    output = log.read_text()
    assert f"breaker 1-default: failover: moved from {b} to {a}" in output
    [summary] = re.findall(r"(\d+) queries: (\d+) ok, (\d+) failed, 0 rejected", output)
    assert int(summary[1]) >= 1 and int(summary[2]) >= 1, output

    again = manage(register, app_env)  # the next `up`: tenant 1 stays on postgres_1, same generation
    assert again.returncode == 0, again.stderr
    assert again.stdout.splitlines() == [
        "1-default exists: left as it is (--if-absent)",
        "1-default: generation 2",
        f"  failover postgres@{b}/tenant1",
        f"  active   postgres@{a}/tenant1",
    ]
    as_json = manage([*register, "--json"], app_env)
    assert json.loads(as_json.stdout)["created"] is False and json.loads(as_json.stdout)["generation"] == 2
    still_on_a = manage([*traffic, "--count", "1", "--interval", "0"], app_env)
    assert f"ok, 3 rows from {a}" in still_on_a.stdout, still_on_a.stdout

    # --if-absent still checks its input, even for an alias it leaves alone.
    bad = manage([*register[:5], "postgres://postgres@postgres_1:99999/tenant1", "--if-absent"], app_env)
    assert bad.returncode != 0 and "port must be between 1 and 65535" in bad.stderr
    # Without the flag the alias is replaced: back on postgres_2, a new generation. What it prevents.
    replaced = manage([arg for arg in register if arg != "--if-absent"], app_env)
    assert replaced.returncode == 0, replaced.stderr
    assert replaced.stdout.splitlines()[:2] == ["1-default: generation 3", f"  active   postgres@{b}/tenant1"]


def test_traffic_says_when_the_alias_is_not_registered(app_env):
    result = manage(["python", "manage.py", "tenant_traffic", "9-default", "--count", "1"], app_env)
    assert result.returncode != 0 and "9-default is not registered" in result.stderr


def test_web_runs_gunicorn_on_the_project_with_debug_off_and_a_secret_key_of_its_own(services, env):
    web = services["web"]
    [argv] = steps(web)
    assert argv[:2] == ["gunicorn", "project.wsgi:application"]
    assert web["environment"]["DJANGO_DEBUG"] == "0"
    key = web["environment"]["DJANGO_SECRET_KEY"]
    settings_text = (ROOT / "project" / "settings.py").read_text()
    assert len(key) >= 50 and f'"{key}"' not in settings_text  # not the development default
    django_env = {name: value for name, value in web["environment"].items() if name.startswith("DJANGO_")}
    result = run([str(BIN / "gunicorn"), "--check-config", *argv[1:]], {**env, **django_env})  # loads the app
    assert result.returncode == 0, result.stderr
    assert published(web) == [(8000, 8000)]


def test_the_secret_key_comes_from_the_environment_when_set():
    result = compose_config(ROOT / "docker-compose.yml", {**os.environ, "DJANGO_SECRET_KEY": "from-the-shell"})
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    assert {services[name]["environment"]["DJANGO_SECRET_KEY"] for name in [*APP_SERVICES, "migrate"]} == {
        "from-the-shell"
    }


def test_the_image_collects_static_files_at_build_time_without_database_or_redis(services, tmp_path):
    lines = (ROOT / "Dockerfile").read_text().splitlines()
    [step] = [line for line in lines if line.startswith("RUN") and "collectstatic" in line]
    assert lines.index(step) > lines.index("COPY . .")
    argv = shlex.split(step.removeprefix("RUN"))
    assignments = dict(arg.split("=", 1) for arg in argv if "=" in arg and not arg.startswith("-"))
    argv = [arg for arg in argv if arg.split("=", 1)[0] not in assignments]
    assert argv[:4] == ["python", "manage.py", "collectstatic", "--noinput"]
    # At build time control_db and redis do not exist: their names do not even resolve.
    build_env = {
        "PATH": os.environ["PATH"],
        "TENANTBREAKER_VAR_DIR": str(tmp_path),
        "DATABASE_URL": services["web"]["environment"]["DATABASE_URL"],
        "REDIS_URL": services["web"]["environment"]["REDIS_URL"],
        **assignments,
    }
    result = run([str(BIN / "python"), *argv[1:]], build_env)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "static" / "admin" / "css" / "base.css").is_file()  # STATIC_ROOT: var/static


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_run_celery_on_the_project(services, env, name):
    [argv] = steps(services[name])
    assert argv[:4] == ["celery", "-A", "project", name]
    result = run([str(BIN / "celery"), *argv[1:], "--help"], env)  # loads the app, parses the options
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", APP_SERVICES)
def test_the_app_waits_for_migrate_and_is_built_here(services, name):
    service = services[name]
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert Path(service["build"]["context"]) == ROOT and (ROOT / "Dockerfile").is_file()
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_metrics_of_every_app_process_are_added_up_in_one_directory_emptied_by_migrate(services):
    directory = services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    for name in [*APP_SERVICES, "migrate"]:
        assert f"prometheus:{directory}:rw" in services[name]["volumes"]
    for name in APP_SERVICES:
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == directory
    assert steps(services["migrate"])[0] == ["find", directory, "-mindepth", "1", "-delete"]
    assert f"mkdir -p {directory}" in (ROOT / "Dockerfile").read_text()  # owned by the app user
