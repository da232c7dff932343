"""Start, stop and inspect a local stack: the services as processes and the nginx gateway.

    python scripts/stack.py start [--name dev] [--gateway-port 8080] [--port-offset 0]
        [--pg-port 5432] [--replicas 2 | --replicas order_service=3,payment_service=2]
    python scripts/stack.py stop [--name dev]
    python scripts/stack.py status [--name dev]

Each stack keeps its pid files and logs in .run/<name>/. Starting twice is fine: a service
that is already up is left alone. Each process listens on the service's public port (the
gateway's upstream) and its internal port 100 above (what the other services call). With
``--replicas``, a service runs as several processes, each on its own pair of ports (the n-th
replica's public port is the service's + 200 x n), all behind the gateway's upstream for it
and consuming its queue together; they share its log file.
``make dev`` runs the "dev" stack; the end-to-end tests
run a "test" stack on other ports, databases and a RabbitMQ vhost of their own.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from nginx.render import render  # noqa: E402
from scripts.local_secrets import ENV_FILE, read_env_file  # noqa: E402
from shared_runtime.auth import Claims, create_access_token  # noqa: E402
from shared_runtime.registry import DATABASES, INTERNAL_PORT_STEP, SERVICES  # noqa: E402

# service -> commands run after its migrations, before it starts
SETUP: dict[str, list[str]] = {"product_service": ["load-demo"]}
PYTHON = sys.executable
# A replica takes two ports, its public one and the internal one INTERNAL_PORT_STEP above:
# the next replica's pair starts above both.
REPLICA_PORT_STEP = 2 * INTERNAL_PORT_STEP
MAX_REPLICAS = 9


def replica_counts(text: str) -> dict[str, int]:
    """``--replicas``: "2" (every service) or "order_service=3,payment_service=2"."""
    counts = dict.fromkeys(SERVICES, 1)
    if text.strip().isdigit():
        counts = dict.fromkeys(SERVICES, int(text))
    else:
        for part in filter(None, text.split(",")):
            name, _, number = part.partition("=")
            if name.strip() not in SERVICES or not number.strip().isdigit():
                raise argparse.ArgumentTypeError(f"not a service=count: {part!r}")
            counts[name.strip()] = int(number)
    if not all(1 <= n <= MAX_REPLICAS for n in counts.values()):
        raise argparse.ArgumentTypeError(f"replicas go from 1 to {MAX_REPLICAS}")
    return counts


def replica_ports(args: argparse.Namespace, service: str, replica: int) -> tuple[int, int]:
    """The public and the internal port of a service's n-th process."""
    public = SERVICES[service].port + args.port_offset + REPLICA_PORT_STEP * replica
    return public, public + INTERNAL_PORT_STEP


def pid_file(run: Path, service: str, replica: int) -> Path:
    """The first replica keeps the plain name (what make stop, the tests and chaos look for)."""
    return run / (f"{service}.pid" if replica == 0 else f"{service}.{replica}.pid")


def alive(pid: int) -> bool:
    """True while the process runs; a killed one not yet reaped (a zombie) is not alive.

    A service outlives the stack.py that started it, so its parent is init, which may reap
    it late: os.kill(pid, 0) alone would take a killed service for a running one.
    """
    try:
        os.kill(pid, 0)
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in ("Z", "X")


def running_pid(pid_file: Path) -> int | None:
    """The pid in ``pid_file`` if that process is alive, else None."""
    try:
        pid = int(pid_file.read_text())
    except (OSError, ValueError):
        return None
    return pid if alive(pid) else None


def _get(url: str, timeout: float = 1.0) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (OSError, urllib.error.URLError):
        return 0


def _wait(url: str, deadline_s: float, what: str, log: Path | None = None) -> None:
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if _get(url) == 200:
            return
        time.sleep(0.2)
    tail = ""
    if log is not None and log.exists():
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-20:])
    raise SystemExit(f"{what} did not become ready at {url} within {deadline_s:.0f}s\n{tail}")


def _ensure_free(port: int, what: str) -> None:
    with socket.socket() as probe:
        if probe.connect_ex(("127.0.0.1", port)) == 0:
            raise SystemExit(
                f"port {port} for {what} is taken by another process "
                "(a stack started from another checkout? stop it there with 'make stop')"
            )


def admin_token(api: str, email: str, password: str, env: dict[str, str] | None = None) -> str:
    """An administrator made with the real CLI (again is fine), logged in through ``api``
    (the gateway's /api/v1). ``env`` points the CLI at the stack's users database."""
    command = ["-m", "user_service", "create-admin", "--email", email, "--password", password]
    subprocess.run([PYTHON, *command], check=True, cwd=ROOT, env=env, capture_output=True)
    login = urllib.request.Request(
        f"{api}/users/login",
        data=json.dumps({"email": email, "password": password}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(login, timeout=10) as response:
        return str(json.load(response)["accessToken"])


def jwt_secret() -> str:
    """The stack's signing key: from the environment (the tests make their own), else the
    one `make dev` generated into .env (scripts/local_secrets.py)."""
    secret = os.environ.get("JWT_SECRET") or read_env_file(ENV_FILE).get("JWT_SECRET")
    if not secret:
        raise SystemExit(
            "JWT_SECRET is not set: run 'make dev' (it generates one into .env) "
            "or 'python scripts/local_secrets.py'"
        )
    return secret


async def insert_accounts(
    users_dsn: str, count: int, *, role: str = "customer", label: str = "load"
) -> list[Claims]:
    """``count`` accounts written straight into a users database (asyncpg DSN), for load and
    tests that need many real customers at once; their password is random and thrown away,
    so they are used through tokens minted with the stack's key (``token_for``)."""
    import asyncpg
    import bcrypt

    unusable = bcrypt.hashpw(os.urandom(16).hex().encode(), bcrypt.gensalt(4)).decode()
    claims = []
    for _ in range(count):
        user_id = uuid.uuid4()
        email = f"{label}-{user_id.hex[:16]}@example.com"
        claims.append(Claims(sub=user_id, email=email, full_name=f"{label} customer", role=role))
    conn = await asyncpg.connect(users_dsn)
    try:
        await conn.copy_records_to_table(
            "users",
            records=[(c.sub, c.email, unusable, c.full_name, c.role) for c in claims],
            columns=["id", "email", "password_hash", "full_name", "role"],
        )
    finally:
        await conn.close()
    return claims


async def drop_databases(
    db_suffix: str, admin_dsn: str = "postgresql://postgres@127.0.0.1:5432"
) -> None:
    """Drop every service database of a stack (its ``--db-suffix``), connections and all."""
    import asyncpg

    conn = await asyncpg.connect(f"{admin_dsn}/postgres")
    try:
        for name in DATABASES:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}{db_suffix}" WITH (FORCE)')
    finally:
        await conn.close()


def fresh_vhost(vhost: str) -> None:
    """A clean RabbitMQ vhost for a stack: no queue or parked message of an earlier run."""

    def rabbitmqctl(*args: str) -> str:
        done = subprocess.run(["rabbitmqctl", "-q", *args], capture_output=True, text=True)
        done.check_returncode()
        return done.stdout

    if vhost in rabbitmqctl("list_vhosts", "name").split():
        rabbitmqctl("delete_vhost", vhost)
    rabbitmqctl("add_vhost", vhost)
    rabbitmqctl("set_permissions", "-p", vhost, "guest", ".*", ".*", ".*")


def token_for(claims: Claims, secret: str | None = None, ttl_s: int = 6 * 3600) -> dict[str, str]:
    """The Authorization header of an account, signed with the stack's key."""
    return {"Authorization": f"Bearer {create_access_token(claims, secret or jwt_secret(), ttl_s)}"}


def service_env(args: argparse.Namespace, service: str, replica: int = 0) -> dict[str, str]:
    info = SERVICES[service]
    prefix, database = info.env_prefix, info.database
    env = dict(os.environ)
    env["JWT_SECRET"] = jwt_secret()
    public, internal = replica_ports(args, service, replica)
    env[f"{prefix}_PORT"], env[f"{prefix}_INTERNAL_PORT"] = str(public), str(internal)
    if database:
        # Each service connects as its own role, owner of its database alone; the migrations
        # (run as the local superuser) create the role and hand it the database.
        env.setdefault(
            f"{prefix}_DATABASE_URL",
            f"postgresql+asyncpg://{service}@127.0.0.1:{args.pg_port}/{database}{args.db_suffix}",
        )
        env.setdefault(
            f"{prefix}_DATABASE_ADMIN_URL",
            f"postgresql://postgres@127.0.0.1:{args.pg_port}/postgres",
        )
    # Calls between services go to the first replica's internal port.
    if service != "user_service":  # the others check tokens against it (shared_runtime.auth)
        env.setdefault("USER_SERVICE_URL", SERVICES["user_service"].internal_url(args.port_offset))
    for peer in info.calls:
        env.setdefault(
            f"{prefix}_{SERVICES[peer].peer_setting()}",
            SERVICES[peer].internal_url(args.port_offset),
        )
    if args.amqp_url:
        env["AMQP_URL"] = args.amqp_url
    env["PYTHONPATH"] = str(ROOT)
    return env


def start(args: argparse.Namespace) -> None:
    run = ROOT / ".run" / args.name
    (run / "logs").mkdir(parents=True, exist_ok=True)
    started = []
    for service in SERVICES:
        env = service_env(args, service)
        if not running_pid(pid_file(run, service, 0)):
            # Migrations and setup once, before the first replica starts.
            if SERVICES[service].database:
                subprocess.run([PYTHON, "-m", service, "migrate"], env=env, cwd=ROOT, check=True)
            for command in SETUP.get(service, []):
                subprocess.run([PYTHON, "-m", service, command], env=env, cwd=ROOT, check=True)
        for replica in range(args.replicas[service]):
            if running_pid(pid_file(run, service, replica)):  # already up
                continue
            for port in replica_ports(args, service, replica):
                _ensure_free(port, service)
            log = run / "logs" / f"{service}.log"
            with log.open("ab") as out:
                process = subprocess.Popen(
                    [PYTHON, "-m", service],
                    env=service_env(args, service, replica),
                    cwd=ROOT,
                    stdout=out,
                    stderr=subprocess.STDOUT,
                    stdin=subprocess.DEVNULL,
                    start_new_session=True,
                )
            pid_file(run, service, replica).write_text(str(process.pid))
            started.append((service if replica == 0 else f"{service}#{replica + 1}", log))
    for service in SERVICES:
        for replica in range(args.replicas[service]):
            log = run / "logs" / f"{service}.log"
            for port in replica_ports(args, service, replica):
                _wait(f"http://127.0.0.1:{port}/ready", 60, service, log)

    upstreams = {
        service: [
            f"127.0.0.1:{replica_ports(args, service, n)[0]}" for n in range(args.replicas[service])
        ]
        for service in SERVICES
    }
    conf = render(
        run / "nginx",
        str(args.gateway_port),
        upstreams,
        api_rate=os.environ.get("GATEWAY_API_RATE", "100r/s"),
        auth_rate=os.environ.get("GATEWAY_AUTH_RATE", "10r/s"),
    )
    nginx_pid = run / "nginx" / "nginx.pid"
    if running_pid(nginx_pid):
        subprocess.run(
            ["nginx", "-p", str(run / "nginx"), "-c", str(conf), "-s", "reload"], check=True
        )
    else:
        _ensure_free(args.gateway_port, "the gateway")
        # A new gateway starts with an empty catalog cache: the databases may be new ones.
        shutil.rmtree(run / "nginx" / "catalog_cache", ignore_errors=True)
        subprocess.run(["nginx", "-p", str(run / "nginx"), "-c", str(conf)], check=True)
    _wait(f"http://127.0.0.1:{args.gateway_port}/health", 15, "gateway")
    names = ", ".join(s for s, _ in started) or "none (all were running)"
    print(f"[{args.name}] started: {names}; gateway on http://localhost:{args.gateway_port}")


def stop(args: argparse.Namespace) -> None:
    run = ROOT / ".run" / args.name
    nginx_pid = run / "nginx" / "nginx.pid"
    pid = running_pid(nginx_pid)
    if pid:
        os.kill(pid, signal.SIGQUIT)
    pids = {}
    for service in SERVICES:
        for replica in range(MAX_REPLICAS):  # whatever ran, however many replicas it had
            pid = running_pid(pid_file(run, service, replica))
            if pid:
                os.kill(pid, signal.SIGTERM)
                pids[pid_file(run, service, replica)] = pid
    deadline = time.monotonic() + 15
    for path, pid in pids.items():
        while time.monotonic() < deadline and running_pid(path):
            time.sleep(0.1)
        if running_pid(path):
            os.kill(pid, signal.SIGKILL)
        path.unlink(missing_ok=True)
    names = sorted({path.name.split(".")[0] for path in pids})
    print(f"[{args.name}] stopped: {', '.join(names) or 'nothing was running'}")


def status(args: argparse.Namespace) -> None:
    run = ROOT / ".run" / args.name
    for service in SERVICES:
        for replica in range(MAX_REPLICAS):
            pid = running_pid(pid_file(run, service, replica))
            if replica and not pid:
                continue
            ports = replica_ports(args, service, replica)
            ready = " ".join(str(_get(f"http://127.0.0.1:{p}/ready") or "no answer") for p in ports)
            state = f"pid {pid}, /ready {ready}" if pid else "stopped"
            name = service if replica == 0 else f"{service}#{replica + 1}"
            print(f"{name:22} :{ports[0]} :{ports[1]}  {state}")
    gateway = _get(f"http://127.0.0.1:{args.gateway_port}/health")
    print(f"{'gateway (nginx)':22} :{args.gateway_port}  /health {gateway or 'no answer'}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawTextHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop", "status"])
    parser.add_argument("--name", default="dev")
    parser.add_argument("--gateway-port", type=int, default=8080)
    parser.add_argument("--port-offset", type=int, default=0)
    parser.add_argument("--db-suffix", default="")
    parser.add_argument("--amqp-url", default=None)
    parser.add_argument(
        "--pg-port", type=int, default=5432, help="the local PostgreSQL cluster's port"
    )
    parser.add_argument(
        "--replicas",
        type=replica_counts,
        default=replica_counts(os.environ.get("STACK_REPLICAS", "1")),
        help='processes per service: "2", or "order_service=3,payment_service=2" '
        "(default: STACK_REPLICAS, else 1)",
    )
    args = parser.parse_args()
    {"start": start, "stop": stop, "status": status}[args.command](args)


if __name__ == "__main__":
    main()
