"""Make this machine's secrets once and keep them: random values in a git-ignored ``.env``.

    python scripts/local_secrets.py             # JWT_SECRET: what `make dev` needs
    python scripts/local_secrets.py --compose   # every secret docker-compose.yml asks for

A key already in ``.env`` keeps its value (the databases and the broker keep the password they
were first started with); a missing one gets a new random value. The file is mode 0600: it
signs every token. Nothing here is ever committed: the repository holds no usable secret.
"""

from __future__ import annotations

import argparse
import os
import secrets
import sys
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV_FILE = ROOT / ".env"
sys.path.insert(0, str(ROOT))

from scripts.consul_acl import TOKEN_VARIABLES as CONSUL_TOKENS  # noqa: E402

# The signing key of every access token (shared_runtime.settings checks it at start-up).
DEV_KEYS = ["JWT_SECRET"]
# What docker-compose.yml reads with ${NAME:?}: the PostgreSQL superuser (the migrations use it
# to create each service's role), each service's own role, the broker, Redis, Grafana, and the
# Consul tokens (management, the agent's, Prometheus's and each service's: scripts/consul_acl.py).
COMPOSE_KEYS = [
    "JWT_SECRET",
    "POSTGRES_PASSWORD",
    "USERS_DB_PASSWORD",
    "PRODUCTS_DB_PASSWORD",
    "ORDERS_DB_PASSWORD",
    "PAYMENTS_DB_PASSWORD",
    "NOTIFICATIONS_DB_PASSWORD",
    "RABBITMQ_PASSWORD",
    "REDIS_PASSWORD",
    "GRAFANA_ADMIN_PASSWORD",
    *CONSUL_TOKENS,
]


def read_env_file(path: Path) -> dict[str, str]:
    """NAME=value lines (comments and blank lines skipped; quotes around a value dropped).

    By hand rather than python-dotenv: this must run with a bare python3, before the
    project's environment exists (the docker-compose path needs no virtualenv)."""
    values = {}
    if path.exists():
        for line in path.read_text().splitlines():
            name, sep, value = line.strip().removeprefix("export ").partition("=")
            if sep and name and not name.startswith("#"):
                value = value.strip()
                if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
                    value = value[1:-1]
                values[name.strip()] = value
    return values


def new_value(key: str) -> str:
    if key == "JWT_SECRET":
        return secrets.token_urlsafe(48)
    if key in CONSUL_TOKENS:
        # Consul takes a token's SecretID only as a UUID; version 4 is 122 random bits.
        return str(uuid.uuid4())
    # Hex: passwords end up inside connection URLs and on command lines (redis-server).
    return secrets.token_hex(24)


def ensure(keys: list[str], env_file: Path = ENV_FILE) -> list[str]:
    """Add each missing (or empty) key to ``env_file`` with a random value; the keys added."""
    present = read_env_file(env_file)
    added = [key for key in keys if not present.get(key)]
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as out:
        if added and env_file.stat().st_size and not env_file.read_bytes().endswith(b"\n"):
            out.write("\n")
        for key in added:
            out.write(f"{key}={new_value(key)}\n")
    os.chmod(env_file, 0o600)
    return added


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("--compose", action="store_true", help="also docker-compose's secrets")
    parser.add_argument("--env-file", type=Path, default=ENV_FILE)
    args = parser.parse_args(argv)
    added = ensure(COMPOSE_KEYS if args.compose else DEV_KEYS, args.env_file)
    if added:
        print(f"==> generated {', '.join(added)} in {args.env_file} (mode 0600, git-ignored)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
