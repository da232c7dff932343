"""Point-in-time restore with pgBackRest (scripts/pitr.py) on a PostgreSQL cluster of the
test's own, archiving to a local repository and to S3 (a moto server, over TLS as S3 is)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import boto3
import httpx
import pytest

from scripts import pitr
from tests.pg_cluster import free_port, scratch_cluster
from tests.support import ROOT

NGINX_TLS = """
daemon off;
pid {home}/nginx.pid;
error_log {home}/nginx-error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {home}/body;
    proxy_temp_path {home}/proxy;
    server {{
        listen 127.0.0.1:{port} ssl;
        ssl_certificate {home}/s3.crt;
        ssl_certificate_key {home}/s3.key;
        client_max_body_size 0;
        proxy_request_buffering off;
        location / {{
            proxy_http_version 1.1;
            proxy_set_header Host $http_host;
            proxy_pass http://127.0.0.1:{moto};
        }}
    }}
}}
"""


@pytest.fixture(scope="module")
def s3() -> Iterator[pitr.S3Repo]:
    """S3 over TLS, as pgBackRest speaks it: moto behind nginx with a certificate made here."""
    home = Path(tempfile.mkdtemp(prefix="pitr-s3-"))
    moto_port, port = free_port(), free_port()
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
         "-subj", "/CN=127.0.0.1", "-keyout", str(home / "s3.key"), "-out", str(home / "s3.crt")],
        check=True, capture_output=True,
    )  # fmt: skip
    (home / "nginx.conf").write_text(NGINX_TLS.format(home=home, port=port, moto=moto_port))
    servers = [
        subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(moto_port)],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
        subprocess.Popen(
            ["nginx", "-p", str(home), "-c", str(home / "nginx.conf")],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        ),
    ]
    endpoint = f"https://127.0.0.1:{port}"
    deadline = time.monotonic() + 30
    while True:
        try:
            if httpx.get(endpoint, verify=False, timeout=1).status_code < 500:
                break
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline or any(s.poll() is not None for s in servers):
            for server in servers:
                server.kill()
            raise RuntimeError("the S3 server (moto behind nginx) did not start")
        time.sleep(0.2)
    client = boto3.client(
        "s3",
        endpoint_url=endpoint,
        verify=False,
        region_name="us-east-1",
        aws_access_key_id="backup",
        aws_secret_access_key="backup-secret",
    )
    client.create_bucket(Bucket="shop-backups")
    yield pitr.S3Repo(
        bucket="shop-backups",
        endpoint="127.0.0.1",
        region="us-east-1",
        key="backup",
        secret="backup-secret",
        port=port,
        verify_tls=False,  # the certificate was made up on the spot
        uri_style="path",
    )
    for server in servers:
        server.terminate()
        server.wait(10)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def cluster(s3: pitr.S3Repo) -> Iterator[pitr.Cluster]:
    with scratch_cluster(s3) as cluster:
        yield cluster


def ensure_backup(cluster: pitr.Cluster) -> None:
    """A test that runs alone needs the backup the first test takes."""
    pitr.setup(cluster)
    if not pitr.info(cluster):
        pitr.backup(cluster, "full")


def orders(cluster: pitr.Cluster) -> list[int]:
    ids = pitr.psql(cluster, "SELECT string_agg(id::text, ',' ORDER BY id) FROM orders", "shop")
    return [int(i) for i in ids.split(",")] if ids else []


def place(cluster: pitr.Cluster, first: int, last: int) -> None:
    """Orders committed one transaction each, as the saga commits them."""
    statements = ";".join(
        f"INSERT INTO orders (id, status) VALUES ({n}, 'CONFIRMED')" for n in range(first, last + 1)
    )
    pitr.psql(cluster, statements, "shop")


def test_restore_to_an_instant_brings_back_exactly_what_was_committed_by_then(cluster):
    done = pitr.setup(cluster)
    assert any("restarted PostgreSQL" in line for line in done)  # archive_mode was off
    assert pitr.psql(cluster, "SHOW archive_mode") == "on"
    assert pitr.setup(cluster) == ["stanza ecommerce ready in repo 1, 2"]  # the second: nothing

    pitr.psql(cluster, "CREATE DATABASE shop")
    pitr.psql(cluster, "CREATE TABLE orders (id int PRIMARY KEY, status text NOT NULL)", "shop")
    place(cluster, 1, 40)
    backups = pitr.backup(cluster, "full")
    assert {(b["repo"], b["type"]) for b in backups} == {(1, "full"), (2, "full")}

    place(cluster, 41, 80)
    # pgBackRest keeps a backup's stop time in whole seconds: T must fall in a later second.
    while time.time() < max(int(str(b["stop"])) for b in backups) + 1:
        time.sleep(0.05)
    instant = pitr.psql(cluster, "SELECT clock_timestamp()")  # T: after 80 committed
    place(cluster, 81, 120)

    # From the offsite repository: the local one could be gone with the machine.
    seconds = pitr.restore(cluster, target=instant, repo=2)
    assert orders(cluster) == list(range(1, 81))
    assert seconds > 0

    # The restored cluster goes on archiving: a crash now loses nothing that was committed.
    place(cluster, 200, 210)
    pitr.restore(cluster)
    assert orders(cluster) == [*range(1, 81), *range(200, 211)]


def run_pitr(cluster: pitr.Cluster, *args: str) -> subprocess.CompletedProcess[str]:
    """scripts/pitr.py as `make` runs it, pointed at the test's cluster."""
    env = {
        **os.environ,
        "PITR_PGDATA": str(cluster.data),
        "PITR_PGPORT": str(cluster.port),
        "PITR_PGSOCKET": str(cluster.socket),
        "PITR_HOME": str(cluster.home),
        "PITR_PG_CTL": " ".join(cluster.pg_ctl),
    }
    command = [sys.executable, "scripts/pitr.py", *args]
    return subprocess.run(command, capture_output=True, text=True, cwd=ROOT, env=env)


def test_restore_refuses_without_force_and_changes_nothing(cluster):
    ensure_backup(cluster)
    before = pitr.psql(cluster, "SELECT pg_postmaster_start_time()")
    result = run_pitr(cluster, "restore", "--time", "2020-01-01 00:00:00+00")
    assert result.returncode == 2
    assert "FORCE=1" in result.stderr
    # What make restore-db asks before it stops the services.
    checked = run_pitr(cluster, "check-restore", "--time", "not a time")
    assert checked.returncode == 2
    assert "is not a time" in checked.stderr
    assert pitr.psql(cluster, "SELECT pg_postmaster_start_time()") == before  # not restarted


def test_a_restore_it_cannot_do_refuses_before_it_stops_anything(cluster):
    ensure_backup(cluster)
    before = pitr.psql(cluster, "SELECT pg_postmaster_start_time()")
    for target, said in [
        ("2020-01-01 00:00:00+00", "before the oldest backup ended"),
        ("not a time", "is not a time"),
    ]:
        with pytest.raises(pitr.PitrError, match=said):
            pitr.restore(cluster, target=target)
    with pytest.raises(pitr.PitrError, match="no backup to restore from in repo 3"):
        pitr.check_restorable(cluster, None, 3)
    assert pitr.psql(cluster, "SELECT pg_postmaster_start_time()") == before  # never stopped
