"""make export-db / make import-db round trip on real PostgreSQL databases."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

from tests.support import ROOT

SCRIPT = [sys.executable, str(ROOT / "scripts" / "backup.py")]
PSQL = ["psql", "-X", "-q", "-t", "-A", "-h", "127.0.0.1", "-U", "postgres"]


def psql(database: str, sql: str) -> str:
    return subprocess.run(
        [*PSQL, "-d", database, "-c", sql], capture_output=True, text=True, check=True
    ).stdout.strip()


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*SCRIPT, *args], capture_output=True, text=True, cwd=ROOT)


@pytest.fixture
def databases() -> list[str]:
    names = [f"backup_test_{uuid.uuid4().hex[:6]}_{n}" for n in ("a", "b")]
    for name in names:
        psql("postgres", f'CREATE DATABASE "{name}"')
    psql(names[0], "CREATE TABLE orders (id int PRIMARY KEY, total numeric(12,2))")
    psql(names[0], "INSERT INTO orders SELECT n, n * 1.25 FROM generate_series(1, 500) n")
    psql(names[1], "CREATE TABLE payments (order_id int, status text)")
    psql(names[1], "INSERT INTO payments VALUES (1, 'captured'), (2, 'voided')")
    yield names
    for name in names:
        psql("postgres", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def snapshot(names: list[str]) -> tuple[str, str]:
    return (
        psql(names[0], "SELECT count(*), sum(total) FROM orders"),
        psql(
            names[1], "SELECT string_agg(order_id || status, ',' ORDER BY order_id) FROM payments"
        ),
    )


def test_backup_change_wipe_restore_finds_everything_as_it_was(databases, tmp_path: Path):
    before = snapshot(databases)
    made = run("backup", "--dir", str(tmp_path), "--keep", "2", "--databases", *databases)
    assert made.returncode == 0, made.stderr
    [backup] = list(tmp_path.iterdir())
    manifest = json.loads((backup / "manifest.json").read_text())
    assert [e["database"] for e in manifest["databases"]] == databases
    for entry in manifest["databases"]:
        assert entry["bytes"] == (backup / entry["file"]).stat().st_size > 0
        assert len(entry["sha256"]) == 64
    # Password hashes, e-mails, addresses: the owner's alone.
    assert stat.S_IMODE(tmp_path.stat().st_mode) == stat.S_IMODE(backup.stat().st_mode) == 0o700
    assert {stat.S_IMODE(f.stat().st_mode) for f in backup.iterdir()} == {0o600}

    psql(databases[0], "UPDATE orders SET total = 0; DELETE FROM orders WHERE id > 100")
    psql("postgres", f'DROP DATABASE "{databases[1]}" WITH (FORCE)')
    assert psql(databases[0], "SELECT count(*) FROM orders") == "100"

    refused = run("restore", str(backup))
    assert refused.returncode == 2
    assert databases[0] in refused.stderr and "--force" in refused.stderr
    assert psql(databases[0], "SELECT count(*) FROM orders") == "100"  # nothing touched

    restored = run("restore", str(backup), "--force")
    assert restored.returncode == 0, restored.stderr
    assert snapshot(databases) == before


def test_a_damaged_backup_restores_nothing(databases, tmp_path: Path):
    assert run("backup", "--dir", str(tmp_path), "--databases", *databases).returncode == 0
    [backup] = list(tmp_path.iterdir())
    dump = backup / f"{databases[1]}.dump"
    dump.write_bytes(dump.read_bytes()[:-10] + b"0123456789")
    psql(databases[0], "DELETE FROM orders")
    result = run("restore", str(backup), "--force")
    assert result.returncode == 2
    assert "checksum" in result.stderr
    assert psql(databases[0], "SELECT count(*) FROM orders") == "0"


def test_only_the_newest_backups_are_kept(databases, tmp_path: Path):
    for n in range(3):
        (tmp_path / f"20000101T00000{n}Z").mkdir()
        (tmp_path / f"20000101T00000{n}Z" / "manifest.json").write_text("{}")
    assert (
        run("backup", "--dir", str(tmp_path), "--keep", "2", "--databases", *databases).returncode
        == 0
    )
    kept = sorted(p.name for p in tmp_path.iterdir())
    assert len(kept) == 2
    assert kept[0] == "20000101T000002Z" and kept[1].startswith("20")
