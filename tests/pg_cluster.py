"""A PostgreSQL cluster of a test's own (initdb), for tests that restart, archive and rewind
one: the suite's shared cluster is never touched."""

from __future__ import annotations

import os
import pwd
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from scripts import pitr

PG_BIN = Path(f"/usr/lib/postgresql/{pitr.debian_version()}/bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def scratch_cluster(s3: pitr.S3Repo | None = None, tcp: bool = False) -> Iterator[pitr.Cluster]:
    """A new cluster on a free port, owned by postgres, trusting local connections; with
    ``tcp`` it also listens on 127.0.0.1 (for services), else on its socket alone."""
    home = Path(tempfile.mkdtemp(prefix="pitr-"))
    home.chmod(0o755)
    owner = pwd.getpwnam("postgres")
    data = home / "data"
    os.chown(home, owner.pw_uid, owner.pw_gid)
    port = free_port()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    subprocess.run(
        [*as_postgres, str(PG_BIN / "initdb"), "-D", str(data), "-U", "postgres", "-A", "trust"],
        check=True,
        capture_output=True,
    )
    listen = "127.0.0.1" if tcp else ""
    with (data / "postgresql.conf").open("a") as conf:
        conf.write(
            f"port = {port}\nunix_socket_directories = '{home}'\n"
            f"listen_addresses = '{listen}'\nmax_connections = 200\n"
        )
    cluster = pitr.Cluster(
        data=data,
        port=port,
        socket=home,
        home=home / "pgbackrest",
        pg_ctl=[str(PG_BIN / "pg_ctl"), "-D", str(data), "-w"],
        s3=s3,
    )
    pitr.start(cluster)
    try:
        yield cluster
    finally:
        try:
            pitr.stop(cluster)
        except pitr.PitrError:  # the archiver still trying: no shutdown checkpoint is needed
            stop = pitr._as_owner(cluster, [*cluster.pg_ctl, "stop", "-m", "immediate"])
            subprocess.run(stop, capture_output=True)
        finally:
            shutil.rmtree(home, ignore_errors=True)
