"""Continuous archiving and point-in-time restore with pgBackRest (`make backup-db`,
`make restore-db`).

    python scripts/pitr.py setup                  # once: WAL archiving on, the stanza made
    python scripts/pitr.py backup [--type full|diff|incr]
    python scripts/pitr.py restore [--time '2026-12-03 14:05:00+00'] [--repo 2] --force
    python scripts/pitr.py info
    python scripts/pitr.py check-restore [--time ...] [--repo 2]   # nothing changes

Every WAL segment of the cluster that holds the service databases is archived as it fills,
and at least every ``archive_timeout`` (60 s) on a quiet database, to every repository:
repo 1 on this machine (full backups kept 7 days), and repo 2 in S3-compatible object storage
when ``PITR_S3_BUCKET`` names a bucket (kept 30 days). A restore brings the whole cluster,
so every service database, back to one instant: the latest archived state, or ``--time``.
It refuses without ``--force``, and prints what it restored and how long it took.

The cluster is the local PostgreSQL unless told otherwise (``PITR_PGDATA``, ``PITR_PGPORT``,
``PITR_PGSOCKET``, ``PITR_PG_CTL``: the tests run their own cluster this way). pgBackRest runs
as the cluster's owner (``postgres``): when this script runs as root it switches user.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import pwd
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from scripts.pitr_config import STANZA, Cluster, S3Repo, config_text, debian_version  # noqa: E402, F401
from shared_events.recovery import settle_after_restore  # noqa: E402
from shared_runtime.registry import DATABASES, SERVICES  # noqa: E402

ARCHIVE_TIMEOUT_S = 60  # the longest a quiet database's last write waits to be archived
# Events written this long before the restored instant are published again (their consumers'
# inboxes skip those they had): the saga's deadline, past which an order has settled.
REPLAY_WINDOW_S = 1800


class PitrError(Exception):
    pass


def _as_owner(cluster: Cluster, command: list[str]) -> list[str]:
    if os.geteuid() == 0 and cluster.owner != "root":
        return ["runuser", "-u", cluster.owner, "--", *command]
    return command


def _run(cluster: Cluster, command: list[str], owner: bool = True) -> str:
    full = _as_owner(cluster, command) if owner else command
    try:
        result = subprocess.run(full, capture_output=True, text=True)
    except FileNotFoundError:
        raise PitrError(f"{full[0]} is not installed (scripts/bootstrap.sh installs it)") from None
    if result.returncode != 0:
        output = (result.stderr.strip() or result.stdout.strip())[-2000:]
        raise PitrError(f"{' '.join(command[:3])} failed: {output}")
    return result.stdout


def pgbackrest(cluster: Cluster, *args: str) -> str:
    return _run(cluster, ["pgbackrest", f"--config={cluster.conf}", f"--stanza={STANZA}", *args])


def psql(cluster: Cluster, sql: str, database: str = "postgres") -> str:
    command = ["psql", "-X", "-q", "-t", "-A", "-h", str(cluster.socket), "-p", str(cluster.port)]
    return _run(cluster, [*command, "-d", database, "-c", sql]).strip()


def _owned_dir(cluster: Cluster, path: Path) -> None:
    path.mkdir(mode=0o750, parents=True, exist_ok=True)
    if os.geteuid() == 0:
        account = pwd.getpwnam(cluster.owner)
        os.chown(path, account.pw_uid, account.pw_gid)


def setup(cluster: Cluster) -> list[str]:
    """Write the configuration, turn WAL archiving on (restarting PostgreSQL if it was off)
    and create the stanza in every repository. Safe to run again."""
    if shutil.which("pgbackrest") is None:
        raise PitrError("pgbackrest is not installed (Debian: apt-get install -y pgbackrest)")
    done = []
    for path in (cluster.home, cluster.home / "repo1", cluster.home / "log", cluster.home / "lock"):
        _owned_dir(cluster, path)
    text = config_text(cluster)
    if not cluster.conf.exists() or cluster.conf.read_text() != text:
        cluster.conf.write_text(text)
        cluster.conf.chmod(0o600)  # it holds the S3 secret
        if os.geteuid() == 0:
            account = pwd.getpwnam(cluster.owner)
            os.chown(cluster.conf, account.pw_uid, account.pw_gid)
        done.append(f"wrote {cluster.conf}")
    command = f"pgbackrest --config={cluster.conf} --stanza={STANZA} archive-push %p"
    wanted = {
        "archive_mode": "on",
        "archive_command": command,
        "archive_timeout": str(ARCHIVE_TIMEOUT_S),
    }
    current = {name: psql(cluster, f"SHOW {name}") for name in wanted}
    for name, value in wanted.items():
        if current[name] != value and not (name == "archive_timeout" and current[name] == "1min"):
            quoted = value.replace("'", "''")
            psql(cluster, f"ALTER SYSTEM SET {name} = '{quoted}'")
            done.append(f"set {name}")
    if current["archive_mode"] != "on":
        restart(cluster)
        done.append("restarted PostgreSQL (archive_mode takes effect at start)")
    else:
        psql(cluster, "SELECT pg_reload_conf()")
    pgbackrest(cluster, "stanza-create")
    pgbackrest(cluster, "check")  # a WAL switch, archived to every repository
    done.append(f"stanza {STANZA} ready in repo {', '.join(map(str, cluster.repos))}")
    return done


def restart(cluster: Cluster) -> None:
    stop(cluster)
    start(cluster)


def stop(cluster: Cluster) -> None:
    _run(cluster, [*cluster.pg_ctl, "stop", *_mode_fast(cluster)], owner=_ctl_as_owner(cluster))


def start(cluster: Cluster) -> None:
    if _ctl_as_owner(cluster):
        for path in (cluster.home, cluster.home / "log"):
            _owned_dir(cluster, path)
    _run(cluster, [*cluster.pg_ctl, "start", *_log_file(cluster)], owner=_ctl_as_owner(cluster))


def _ctl_as_owner(cluster: Cluster) -> bool:
    return cluster.pg_ctl[:1] != ["pg_ctlcluster"]  # pg_ctlcluster switches user itself


def _mode_fast(cluster: Cluster) -> list[str]:
    return ["-m", "fast"] if _ctl_as_owner(cluster) else ["--mode", "fast"]


def _log_file(cluster: Cluster) -> list[str]:
    return ["-l", str(cluster.home / "log" / "postgresql.log")] if _ctl_as_owner(cluster) else []


def backup(cluster: Cluster, kind: str = "incr") -> list[dict[str, object]]:
    """A backup now, into every repository (the first one of a repository is a full one);
    then what each repository holds."""
    for repo in cluster.repos:
        pgbackrest(cluster, f"--repo={repo}", f"--type={kind}", "backup")
    return info(cluster)


def info(cluster: Cluster) -> list[dict[str, object]]:
    """The backups of every repository, oldest first: label, type, repo, start and stop."""
    [stanza] = json.loads(pgbackrest(cluster, "--output=json", "info"))
    return [
        {
            "label": b["label"],
            "type": b["type"],
            "repo": b["database"]["repo-key"],
            "start": b["timestamp"]["start"],
            "stop": b["timestamp"]["stop"],
        }
        for b in stanza.get("backup", [])
    ]


def archive_now(cluster: Cluster) -> None:
    """Close the current WAL segment and wait until every repository has it."""
    pgbackrest(cluster, "check")


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def check_restorable(cluster: Cluster, target: str | None, repo: int | None) -> None:
    """Before anything stops: a backup to restore from, and a target it can reach."""
    try:
        backups = [b for b in info(cluster) if repo is None or b["repo"] == repo]
    except PitrError as exc:
        raise PitrError(
            f"no backup to restore from; take one with make backup-db ({exc})"
        ) from None
    if not backups:
        where = f" in repo {repo}" if repo else ""
        raise PitrError(f"no backup to restore from{where}; take one with make backup-db")
    if not target:
        return
    try:
        epoch = float(
            psql(cluster, f"SELECT extract(epoch FROM {_sql_literal(target)}::timestamptz)")
        )
    except PitrError as exc:
        if "invalid input syntax" in str(exc) or "out of range" in str(exc):
            raise PitrError(
                f"TIME {target!r} is not a time, e.g. '2026-12-03 14:05:00+00'"
            ) from None
        return  # the cluster is down: pgBackRest judges the target
    oldest = min(int(str(b["stop"])) for b in backups)
    if epoch <= oldest:
        end = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(oldest))
        raise PitrError(f"TIME {target} is before the oldest backup ended ({end} UTC)")


def restore(cluster: Cluster, target: str | None = None, repo: int | None = None) -> float:
    """Bring the whole cluster back to ``target`` (a timestamp PostgreSQL understands) or to
    the latest archived state; the seconds it took, PostgreSQL accepting writes again."""
    check_restorable(cluster, target, repo)
    started = time.monotonic()
    try:  # what the running cluster wrote last goes to the archive first: nothing lost
        archive_now(cluster)
    except PitrError:
        pass  # a cluster that is down or damaged: restore from what is archived
    try:
        stop(cluster)
    except PitrError:
        pass  # already stopped
    options = ["--delta"]
    if repo:
        options.append(f"--repo={repo}")
    if target:
        options += ["--type=time", f"--target={target}", "--target-action=promote"]
    try:
        pgbackrest(cluster, *options, "restore")
    except PitrError:
        try:  # pgBackRest refused before it wrote: the cluster is as it was
            start(cluster)
        except PitrError:
            pass
        raise
    start(cluster)
    deadline = time.monotonic() + 600
    while psql(cluster, "SELECT pg_is_in_recovery()") != "f":
        if time.monotonic() > deadline:
            raise PitrError("PostgreSQL was still recovering 10 minutes after the restore")
        time.sleep(0.2)
    return time.monotonic() - started


def settle_events(cluster: Cluster, instant: str | None, window_s: float = REPLAY_WINDOW_S) -> str:
    """After a restore: drop what the broker still holds for the services, and publish again
    from every service's outbox what was written in the ``window_s`` before ``instant`` (or
    before now). Run with the services stopped (shared_events.recovery)."""
    at = f"{_sql_literal(instant)}::timestamptz" if instant else "now()"
    epoch = psql(cluster, f"SELECT extract(epoch FROM {at} - make_interval(secs => {window_s}))")
    since = datetime.fromtimestamp(float(epoch), UTC)
    dropped, replayed = asyncio.run(
        settle_after_restore(
            os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/"),
            list(SERVICES),
            [
                f"postgresql://postgres@/{db}?host={cluster.socket}&port={cluster.port}"
                for db in DATABASES
            ],
            since,
            int(os.environ.get("RETRY_BASE_DELAY_MS", "1000")),
        )
    )
    return (
        f"dropped {dropped} message(s) the broker held for the services; {replayed} event(s) "
        f"written since {since:%Y-%m-%d %H:%M:%S} UTC will be published again"
    )


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("setup")
    make = commands.add_parser("backup")
    make.add_argument("--type", choices=["full", "diff", "incr"], default="incr")
    back = commands.add_parser("restore")
    back.add_argument("--time", help="restore to this instant, e.g. '2026-12-03 14:05:00+00'")
    back.add_argument("--repo", type=int, choices=[1, 2], help="the repository to read from")
    back.add_argument("--force", action="store_true")
    back.add_argument(
        "--keep-queues",
        action="store_true",
        help="leave the broker's queues and the outboxes as they are (no event settling)",
    )
    commands.add_parser("info")
    check = commands.add_parser("check-restore", help="would a restore succeed? (nothing changes)")
    check.add_argument("--time")
    check.add_argument("--repo", type=int, choices=[1, 2])
    args = parser.parse_args()
    cluster = Cluster.from_env()
    try:
        if args.command == "setup":
            for line in setup(cluster):
                print(line)
        elif args.command == "backup":
            for line in setup(cluster)[:-1]:  # what the first backup had to turn on
                print(line)
            started = time.monotonic()
            backups = backup(cluster, args.type)
            print(f"backup done in {time.monotonic() - started:.1f} s")
            _print_backups(backups)
        elif args.command == "check-restore":
            check_restorable(cluster, args.time, args.repo)
        elif args.command == "info":
            _print_backups(info(cluster))
        else:
            what = f"to {args.time}" if args.time else "to the latest archived state"
            if not args.force:
                print(
                    f"error: this replaces every database of the cluster at {cluster.data} "
                    f"{what}; run again with FORCE=1 (make) or --force",
                    file=sys.stderr,
                )
                return 2
            print(f"restoring the cluster at {cluster.data} {what} ...", flush=True)
            seconds = restore(cluster, args.time, args.repo)
            print(f"restored {what} in {seconds:.1f} s; PostgreSQL accepts writes again")
            if not args.keep_queues:
                print(settle_events(cluster, args.time))
    except PitrError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


def _print_backups(backups: list[dict[str, object]]) -> None:
    for b in backups:
        start = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(int(str(b["start"]))))
        print(f"repo {b['repo']}  {b['type']:5}  {b['label']}  {start} UTC")


if __name__ == "__main__":
    sys.exit(main())
