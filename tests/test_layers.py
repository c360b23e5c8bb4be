"""Dependencies point one way: core imports no framework or driver, store imports no Django or Celery."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE_ROOT = Path(__file__).resolve().parent.parent / "breaker_worker"
CORE = PACKAGE_ROOT / "core"
STORE = PACKAGE_ROOT / "store"

CORE_FORBIDDEN_ROOTS = {"django", "redis", "celery", "psycopg2", "psycopg"}
STORE_FORBIDDEN_ROOTS = {"django", "celery"}


def package_of(path: Path) -> str:
    """Dotted package a module lives in (its directory), which relative imports start from."""
    return ".".join(path.parent.relative_to(PACKAGE_ROOT.parent).parts)


def imported_modules(source: str, package: str) -> set[str]:
    """Absolute names of every module a source imports, anywhere in the file (including functions,
    ``TYPE_CHECKING`` blocks, and ``importlib.import_module("...")`` / ``__import__("...")`` calls)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                parts = package.split(".")
                base = ".".join(parts[: len(parts) - (node.level - 1)])
                if node.module:
                    names.add(f"{base}.{node.module}")
                else:
                    # ``from .. import services``: each name may be a module.
                    names.update(f"{base}.{alias.name}" for alias in node.names)
            else:
                assert node.module is not None
                names.add(node.module)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
            if called in {"import_module", "__import__"} and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def violations_in(source: str, package: str, forbidden_roots: set[str], allowed_own: tuple[str, ...]) -> list[str]:
    """Imported modules rooted in ``forbidden_roots``, or in ``breaker_worker`` outside ``allowed_own``."""
    found = []
    for name in sorted(imported_modules(source, package)):
        root = name.split(".")[0]
        if root in forbidden_roots:
            found.append(name)
        elif root == "breaker_worker" and not any(name == p or name.startswith(p + ".") for p in allowed_own):
            found.append(name)
    return found


def violations(path: Path, forbidden_roots: set[str], allowed_own: tuple[str, ...]) -> list[str]:
    return violations_in(path.read_text(), package_of(path), forbidden_roots, allowed_own)


def python_files(directory: Path) -> list[Path]:
    return sorted(directory.rglob("*.py"))


def test_the_layers_are_where_the_test_looks():
    # An empty glob would make every layer test pass vacuously.
    core_names = {p.name for p in python_files(CORE)}
    store_names = {p.name for p in python_files(STORE)}
    assert {"__init__.py", "classify.py", "machine.py", "policy.py", "window.py"} <= core_names
    assert {"__init__.py", "base.py", "redis_store.py"} <= store_names


@pytest.mark.parametrize("path", python_files(CORE), ids=lambda p: p.name)
def test_core_imports_no_framework_driver_or_outer_layer(path):
    assert violations(path, CORE_FORBIDDEN_ROOTS, allowed_own=("breaker_worker.core",)) == []


@pytest.mark.parametrize("path", python_files(STORE), ids=lambda p: p.name)
def test_store_imports_no_django_or_celery(path):
    assert violations(path, STORE_FORBIDDEN_ROOTS, allowed_own=("breaker_worker",)) == []


@pytest.mark.parametrize("path", python_files(STORE), ids=lambda p: p.name)
def test_store_depends_only_on_core(path):
    allowed = ("breaker_worker.core", "breaker_worker.store")
    assert violations(path, set(), allowed_own=allowed) == []


# --- the checker itself: it must see each way of writing an import --------------------------------


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("import django", {"django"}),
        ("import django.db.utils as u", {"django.db.utils"}),
        ("from django.conf import settings", {"django.conf"}),
        ("from redis import Redis", {"redis"}),
        ("import celery, psycopg2", {"celery", "psycopg2"}),
        ("def f():\n    import psycopg2.errors\n", {"psycopg2.errors"}),
        ("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from celery import Task\n", {"typing", "celery"}),
        ("from .window import Counts", {"breaker_worker.core.window"}),
        ("from . import window", {"breaker_worker.core.window"}),
        ("from ..store import RedisBreakerStore", {"breaker_worker.store"}),
        ("from .. import services", {"breaker_worker.services"}),
        ("import importlib\nimportlib.import_module('django.db')", {"importlib", "django.db"}),
        ("__import__('redis')", {"redis"}),
    ],
)
def test_imported_modules_resolves_every_form(source, expected):
    assert imported_modules(source, "breaker_worker.core") == expected


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("from django.db import connections", ["django.db"]),
        ("import redis", ["redis"]),
        ("from celery import shared_task", ["celery"]),
        ("import psycopg2", ["psycopg2"]),
        ("from ..services import transition", ["breaker_worker.services"]),
        ("from ..db.runtime import runtime", ["breaker_worker.db.runtime"]),
        ("from .. import store", ["breaker_worker.store"]),
        ("from breaker_worker.store import RedisBreakerStore", ["breaker_worker.store"]),
        ("import breaker_worker.selectors", ["breaker_worker.selectors"]),
        ("import breaker_worker.coreutils", ["breaker_worker.coreutils"]),
        ("from .window import Counts\nfrom breaker_worker.core import machine", []),
    ],
)
def test_a_forbidden_import_in_core_would_be_reported(source, reported):
    assert violations_in(source, "breaker_worker.core", CORE_FORBIDDEN_ROOTS, ("breaker_worker.core",)) == reported


@pytest.mark.parametrize(
    ("source", "reported"),
    [
        ("from django.conf import settings", ["django.conf"]),
        ("from celery import current_app", ["celery"]),
        ("import redis\nfrom ..core.window import Counts", []),
    ],
)
def test_a_django_or_celery_import_in_store_would_be_reported(source, reported):
    assert violations_in(source, "breaker_worker.store", STORE_FORBIDDEN_ROOTS, ("breaker_worker",)) == reported


def test_package_of_core_and_store_modules():
    assert package_of(CORE / "machine.py") == "breaker_worker.core"
    assert package_of(CORE / "__init__.py") == "breaker_worker.core"
    assert package_of(STORE / "base.py") == "breaker_worker.store"
