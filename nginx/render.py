"""Write a runnable nginx.conf for the gateway: static upstreams around nginx/routes.conf.

    python nginx/render.py --out .run/nginx --listen 8080 \
        --upstream user_service=127.0.0.1:5001 --upstream notification_service=127.0.0.1:5006
"""

from __future__ import annotations

import argparse
from pathlib import Path

HERE = Path(__file__).resolve().parent

MAIN = """\
worker_processes auto;
pid {run}/nginx.pid;
error_log {run}/error.log warn;
daemon on;

events {{
    worker_connections 4096;
}}

http {{
    client_body_temp_path {run}/client_body;
    proxy_temp_path {run}/proxy;
    fastcgi_temp_path {run}/fastcgi;
    uwsgi_temp_path {run}/uwsgi;
    scgi_temp_path {run}/scgi;

    # X-Request-ID from the client when it sends one, else nginx's own.
    map $http_x_request_id $request_id_out {{
        default $http_x_request_id;
        "" $request_id;
    }}

    log_format json_access escape=json '{{"time":"$time_iso8601","request_id":"$request_id_out",'
        '"remote_addr":"$remote_addr","method":"$request_method","uri":"$request_uri",'
        '"status":$status,"bytes":$body_bytes_sent,"request_time":$request_time,'
        '"upstream":"$upstream_addr","upstream_status":"$upstream_status",'
        '"upstream_time":"$upstream_response_time"}}';
    access_log {run}/access.log json_access buffer=64k flush=1s;

    sendfile on;
    keepalive_timeout 65;
    server_tokens off;

{upstreams}
    server {{
        include {routes};
    }}
}}
"""


def render(out: Path, listen: str, upstreams: dict[str, list[str]]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    blocks = []
    for name, servers in upstreams.items():
        lines = "".join(f"        server {s} max_fails=3 fail_timeout=5s;\n" for s in servers)
        blocks.append(f"    upstream {name} {{\n{lines}        keepalive 32;\n    }}\n")
    routes = (HERE / "routes.conf").read_text().replace("@LISTEN@", listen)
    (out / "routes.conf").write_text(routes)
    conf = out / "nginx.conf"
    conf.write_text(
        MAIN.format(
            run=out.resolve(), upstreams="".join(blocks), routes=out.resolve() / "routes.conf"
        )
    )
    return conf


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--listen", default="8080")
    parser.add_argument("--upstream", action="append", default=[], help="name=host:port")
    args = parser.parse_args()
    upstreams: dict[str, list[str]] = {}
    for spec in args.upstream:
        name, _, server = spec.partition("=")
        upstreams.setdefault(name, []).append(server)
    print(render(args.out, args.listen, upstreams))


if __name__ == "__main__":
    main()
