"""Export and import every service database as pg_dump files (`make export-db`,
`make import-db`): for moving data; recovery is scripts/pitr.py.

    python scripts/backup.py backup  [--dir backups] [--keep 7]
    python scripts/backup.py restore backups/20261124T031500Z [--force]

A backup is a directory named by its UTC time holding one `pg_dump -Fc` file per database and
`manifest.json` (database, file, size, SHA-256, server version). Only the newest `--keep`
backups are kept. Restore checks the checksums first, then restores each database with
pg_restore; a database that already holds tables is only overwritten with --force (FORCE=1).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from shared_runtime.registry import DATABASES  # noqa: E402

PG = os.environ.get("BACKUP_PG", "postgresql://postgres@127.0.0.1:5432")


class BackupError(Exception):
    pass


def _run(*command: str) -> str:
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        raise BackupError(f"{command[0]} failed: {result.stderr.strip()}")
    return result.stdout


def _psql(database: str, sql: str) -> str:
    return _run("psql", "-X", "-q", "-t", "-A", "-d", f"{PG}/{database}", "-c", sql).strip()


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as file:
        for chunk in iter(lambda: file.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def backup(target: Path, databases: list[str], keep: int) -> Path:
    """Dumps hold password hashes, e-mails and addresses: readable by their owner only (every
    file 0600, in folders 0700), from the moment they are created."""
    previous = os.umask(0o077)
    try:
        return _backup(target, databases, keep)
    finally:
        os.umask(previous)


def _backup(target: Path, databases: list[str], keep: int) -> Path:
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    target.mkdir(mode=0o700, parents=True, exist_ok=True)
    target.chmod(0o700)  # one made before, by an older version or by hand
    directory = target / stamp
    directory.mkdir(mode=0o700, exist_ok=False)
    entries = []
    try:
        for database in databases:
            dump = directory / f"{database}.dump"
            _run("pg_dump", "-Fc", "--no-owner", "-d", f"{PG}/{database}", "-f", str(dump))
            entries.append(
                {
                    "database": database,
                    "file": dump.name,
                    "bytes": dump.stat().st_size,
                    "sha256": _sha256(dump),
                }
            )
    except BaseException:
        shutil.rmtree(directory, ignore_errors=True)  # never leave half a backup behind
        raise
    manifest = {
        "created_at": datetime.now(UTC).isoformat(),
        "server_version": _psql("postgres", "SHOW server_version"),
        "databases": entries,
    }
    (directory / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    backups = sorted(p for p in target.iterdir() if (p / "manifest.json").exists())
    for old in backups[:-keep] if keep > 0 else []:
        shutil.rmtree(old)
    return directory


def _has_tables(database: str) -> bool | None:
    """None when the database does not exist."""
    exists = _psql("postgres", f"SELECT 1 FROM pg_database WHERE datname = '{database}'")
    if not exists:
        return None
    count = _psql(
        database,
        "SELECT count(*) FROM information_schema.tables "
        "WHERE table_schema NOT IN ('pg_catalog', 'information_schema')",
    )
    return int(count) > 0


def restore(directory: Path, force: bool) -> list[str]:
    manifest = json.loads((directory / "manifest.json").read_text())
    entries = manifest["databases"]
    for entry in entries:  # every file first: a damaged backup restores nothing
        if _sha256(directory / entry["file"]) != entry["sha256"]:
            raise BackupError(f"{entry['file']}: checksum does not match the manifest")
    occupied = [e["database"] for e in entries if _has_tables(e["database"])]
    if occupied and not force:
        raise BackupError(
            f"{', '.join(occupied)} already hold data; restore over them with --force (FORCE=1)"
        )
    for entry in entries:
        database = entry["database"]
        if _has_tables(database) is None:
            _psql("postgres", f'CREATE DATABASE "{database}"')
        # Restored as the database's owner (the service's own role), so the service can use
        # what comes back; a database made here is handed to it by the next `migrate`.
        owner = _psql(
            "postgres",
            f"SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '{database}'",
        )
        _run(
            "pg_restore", "--clean", "--if-exists", "--no-owner", "--single-transaction",
            f"--role={owner}", "-d", f"{PG}/{database}", str(directory / entry["file"]),
        )  # fmt: skip
    return [e["database"] for e in entries]


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    make = commands.add_parser("backup")
    make.add_argument("--dir", type=Path, default=ROOT / "backups")
    make.add_argument("--keep", type=int, default=int(os.environ.get("BACKUP_KEEP", "7")))
    make.add_argument("--databases", nargs="+", default=DATABASES)
    back = commands.add_parser("restore")
    back.add_argument("directory", type=Path)
    back.add_argument("--force", action="store_true")
    args = parser.parse_args()
    try:
        if args.command == "backup":
            directory = backup(args.dir, args.databases, args.keep)
            manifest = json.loads((directory / "manifest.json").read_text())
            for entry in manifest["databases"]:
                print(f"{entry['database']:15} {entry['bytes']:>12,} bytes  {entry['sha256'][:12]}")
            print(f"backup written to {directory}")
        else:
            restored = restore(args.directory, args.force)
            print(f"restored {', '.join(restored)} from {args.directory}")
    except BackupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
