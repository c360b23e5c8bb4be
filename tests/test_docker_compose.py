"""docker-compose.yml, checked without a Docker engine: Debian's docker-compose validates and
resolves it (`config`), and every command it runs is tried here (gunicorn loads the app, celery
loads the project, manage.py knows each command)."""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SERVICES = {"postgres_1", "postgres_2", "control_db", "redis", "migrate", "web", "worker", "beat"}


def compose_config(path: Path) -> subprocess.CompletedProcess:
    compose = shutil.which("docker-compose")
    assert compose, (
        "docker-compose is not installed; scripts/setup installs Debian's docker-compose package "
        "(apt-get install docker-compose), which validates a compose file without a Docker engine"
    )
    return subprocess.run([compose, "-f", str(path), "config"], capture_output=True, text=True, timeout=60)


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


def init_script(service: dict) -> str:
    [volume] = service["volumes"]
    source, target = volume.split(":")[:2]
    assert target == "/docker-entrypoint-initdb.d/init.sql"
    path = Path(source)
    assert path.is_file() and path.is_relative_to(ROOT), f"{source} is not a file of this repository"
    return path.read_text()


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


def test_postgres_2_is_server_b_without_it(services):
    server = services["postgres_2"]
    assert server["image"] == "postgres:13.5-alpine"
    assert published(server) == [(5432, 5432)]
    script = init_script(server)
    assert "CREATE DATABASE tenant1" in script and "test_app_users" not in script.split("\n", 1)[1]


def test_redis(services):
    assert services["redis"]["image"].startswith("redis:")


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
    assert set(migrate["depends_on"]) == {"control_db", "postgres_1", "postgres_2", "redis"}
    for argv in commands:  # each command exists and accepts these arguments
        result = run([str(BIN / "python"), "manage.py", argv[2], "--help"], env)
        assert result.returncode == 0, result.stderr


def test_web_runs_gunicorn_on_the_project(services, env):
    [argv] = steps(services["web"])
    assert argv[:2] == ["gunicorn", "project.wsgi:application"]
    result = run([str(BIN / "gunicorn"), "--check-config", *argv[1:]], env)  # loads the app, then exits
    assert result.returncode == 0, result.stderr
    assert published(services["web"]) == [(8000, 8000)]


@pytest.mark.parametrize("name", ["worker", "beat"])
def test_worker_and_beat_run_celery_on_the_project(services, env, name):
    [argv] = steps(services[name])
    assert argv[:4] == ["celery", "-A", "project", name]
    result = run([str(BIN / "celery"), *argv[1:], "--help"], env)  # loads the app, parses the options
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("name", ["web", "worker", "beat"])
def test_the_app_waits_for_migrate_and_is_built_here(services, name):
    service = services[name]
    assert service["depends_on"] == {"migrate": {"condition": "service_completed_successfully"}}
    assert Path(service["build"]["context"]) == ROOT and (ROOT / "Dockerfile").is_file()
    assert service["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_metrics_of_every_app_process_are_added_up_in_one_directory_emptied_by_migrate(services):
    directory = services["web"]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
    for name in ("web", "worker", "beat", "migrate"):
        assert f"prometheus:{directory}:rw" in services[name]["volumes"]
    for name in ("web", "worker", "beat"):
        assert services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"] == directory
    assert steps(services["migrate"])[0] == ["find", directory, "-mindepth", "1", "-delete"]
    assert f"mkdir -p {directory}" in (ROOT / "Dockerfile").read_text()  # owned by the app user
