"""Where pgBackRest finds the cluster that holds the service databases, and its
repositories: ``Cluster.from_env``, and the ``pgbackrest.conf`` made from it (scripts/pitr.py)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

STANZA = "ecommerce"
LOCAL_RETENTION_DAYS = 7
OFFSITE_RETENTION_DAYS = 30


@dataclass(frozen=True)
class S3Repo:
    """The offsite repository: any S3-compatible store (AWS S3, MinIO, ...)."""

    bucket: str
    endpoint: str
    region: str
    key: str
    secret: str
    path: str = "/pgbackrest"
    port: int = 443
    verify_tls: bool = True
    uri_style: str = "host"  # "path" for MinIO and most self-hosted stores

    @classmethod
    def from_env(cls, env: dict[str, str]) -> S3Repo | None:
        if not env.get("PITR_S3_BUCKET"):
            return None
        return cls(
            bucket=env["PITR_S3_BUCKET"],
            endpoint=env.get("PITR_S3_ENDPOINT", "s3.amazonaws.com"),
            region=env.get("PITR_S3_REGION", "us-east-1"),
            key=env["PITR_S3_KEY"],
            secret=env["PITR_S3_KEY_SECRET"],
            path=env.get("PITR_S3_PATH", "/pgbackrest"),
            port=int(env.get("PITR_S3_PORT", "443")),
            verify_tls=env.get("PITR_S3_VERIFY_TLS", "y") not in ("n", "0", "false"),
            uri_style=env.get("PITR_S3_URI_STYLE", "host"),
        )


@dataclass(frozen=True)
class Cluster:
    """The PostgreSQL cluster that holds the service databases, and where pgBackRest keeps
    its configuration, logs and local repository."""

    data: Path
    port: int
    socket: Path
    home: Path  # pgbackrest.conf, repo1/, log/, lock/
    pg_ctl: list[str] = field(default_factory=list)  # how to start and stop it
    s3: S3Repo | None = None
    owner: str = "postgres"

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> Cluster:
        env = dict(os.environ if env is None else env)
        version = debian_version()
        system = Path(f"/var/lib/postgresql/{version}/main")
        data = Path(env.get("PITR_PGDATA", str(system)))
        default_ctl = (
            f"pg_ctlcluster --skip-systemctl-redirect {version} main"
            if data == system
            else f"/usr/lib/postgresql/{version}/bin/pg_ctl -D {data} -w"
        )
        return cls(
            data=data,
            port=int(env.get("PITR_PGPORT", "5432")),
            socket=Path(env.get("PITR_PGSOCKET", "/var/run/postgresql")),
            home=Path(env.get("PITR_HOME", "/var/lib/pgbackrest/ecommerce")),
            pg_ctl=env.get("PITR_PG_CTL", default_ctl).split(),
            s3=S3Repo.from_env(env),
        )

    @property
    def conf(self) -> Path:
        return self.home / "pgbackrest.conf"

    @property
    def repos(self) -> list[int]:
        return [1, 2] if self.s3 else [1]


def debian_version() -> str:
    """The newest PostgreSQL major version installed the Debian way (/etc/postgresql/<v>)."""
    versions = sorted(
        (p.name for p in Path("/etc/postgresql").glob("*") if p.name.isdigit()), key=int
    )
    return versions[-1] if versions else "15"


def config_text(cluster: Cluster) -> str:
    """pgbackrest.conf: both repositories, their retention, the cluster."""
    lines = [
        "[global]",
        f"repo1-path={cluster.home / 'repo1'}",
        "repo1-retention-full-type=time",
        f"repo1-retention-full={LOCAL_RETENTION_DAYS}",
    ]
    if cluster.s3:
        s3 = cluster.s3
        lines += [
            "repo2-type=s3",
            f"repo2-path={s3.path}",
            f"repo2-s3-bucket={s3.bucket}",
            f"repo2-s3-endpoint={s3.endpoint}",
            f"repo2-s3-region={s3.region}",
            f"repo2-s3-key={s3.key}",
            f"repo2-s3-key-secret={s3.secret}",
            f"repo2-s3-uri-style={s3.uri_style}",
            f"repo2-storage-port={s3.port}",
            f"repo2-storage-verify-tls={'y' if s3.verify_tls else 'n'}",
            "repo2-retention-full-type=time",
            f"repo2-retention-full={OFFSITE_RETENTION_DAYS}",
        ]
    lines += [
        f"log-path={cluster.home / 'log'}",
        f"lock-path={cluster.home / 'lock'}",
        "log-level-console=warn",
        "log-level-file=info",
        "compress-type=lz4",
        "start-fast=y",
        "process-max=2",
        "",
        f"[{STANZA}]",
        f"pg1-path={cluster.data}",
        f"pg1-port={cluster.port}",
        f"pg1-socket-path={cluster.socket}",
        "",
    ]
    return "\n".join(lines)
