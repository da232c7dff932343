"""consul.d/acl-bootstrap.sh, run by sh as consul-acl-init runs it, against a stand-in for the
consul CLI that keeps Consul's ACL state in a file and answers as the CLI does (the commands
and flags the script uses: ``acl policy read|create|update``, ``acl token
read -self|create|update|list|delete``, ``acl set-agent-token``). No Consul here: what the
script asks for, and what a second run or a rotated SecretID does, is what is checked."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from typing import Any

import pytest

from scripts.consul_acl import BOOTSTRAP_SCRIPT, MANAGEMENT_TOKEN, PRINCIPALS, rule_line

pytestmark = pytest.mark.skipif(
    shutil.which("jq") is None, reason="the script reads the CLI's JSON with jq, as in the image"
)

FAKE_CONSUL = '''
import json, os, sys, uuid

path = os.environ["FAKE_CONSUL_STATE"]
with open(path) as f:
    state = json.load(f)


def fail(message):
    print(message, file=sys.stderr)
    sys.exit(1)


def flags(args):
    """Go's flag syntax: -name value, -name=value, or a bare boolean -self."""
    found, i = {}, 0
    while i < len(args):
        name, eq, value = args[i].lstrip("-").partition("=")
        if name == "self":
            found[name] = True
        elif eq:
            found[name] = value
        else:
            i += 1
            found[name] = args[i]
        i += 1
    return found


def shown(token):
    return {
        "AccessorID": token["AccessorID"],
        "SecretID": token["SecretID"],
        "Description": token["Description"],
        "Policies": [{"Name": name} for name in token["Policies"]],
    }


secret = os.environ.get("CONSUL_HTTP_TOKEN")
caller = next((t for t in state["tokens"] if t["SecretID"] == secret), None)
if caller is None:
    fail("Error: Unexpected response code: 403 (ACL not found)")
args = sys.argv[1:]
verb = " ".join(args[:3])
opts = {} if verb == "acl set-agent-token agent" else flags(args[3:])
if verb == "acl token read" and opts.get("self"):
    print(json.dumps(shown(caller)))
    sys.exit(0)
if "global-management" not in caller["Policies"]:
    fail("Error: Unexpected response code: 403 (Permission denied)")
policies, tokens = state["policies"], state["tokens"]
if verb == "acl policy read":
    if opts["name"] not in policies:
        fail(f"Error: Failed to find policy with name {opts['name']}")
    print(policies[opts["name"]])
elif verb == "acl policy create":
    if opts["name"] in policies:
        fail(f"Error: Invalid Policy: A Policy with Name {opts['name']!r} already exists")
    policies[opts["name"]] = opts["rules"]
elif verb == "acl policy update":
    if opts["name"] not in policies:
        fail(f"Error: Failed to find policy with name {opts['name']}")
    policies[opts["name"]] = opts["rules"]
elif verb == "acl token create":
    try:
        uuid.UUID(opts["secret"])
    except ValueError:
        fail("Error: Invalid SecretID: must be a UUID")
    if any(t["SecretID"] == opts["secret"] for t in tokens) or opts["policy-name"] not in policies:
        fail("Error: Failed to create new token")
    token = {
        "AccessorID": str(uuid.uuid4()),
        "SecretID": opts["secret"],
        "Description": opts["description"],
        "Policies": [opts["policy-name"]],
    }
    tokens.append(token)
    print(json.dumps(shown(token)))
elif verb == "acl token update":
    token = next(t for t in tokens if t["AccessorID"] == opts["accessor-id"])
    token["Policies"], token["Description"] = [opts["policy-name"]], opts["description"]
elif verb == "acl token list":
    print(json.dumps([{**shown(t), "SecretID": "hidden"} for t in tokens]))
elif verb == "acl token delete":
    state["tokens"] = [t for t in tokens if t["AccessorID"] != opts["accessor-id"]]
elif verb == "acl set-agent-token agent":
    state["agent_token"] = args[3]
else:
    fail("unknown command: " + " ".join(args))
with open(path, "w") as f:
    json.dump(state, f)
'''


def new_secrets() -> dict[str, str]:
    return {principal.token_variable: str(uuid.uuid4()) for principal in PRINCIPALS}


class Consul:
    """The stand-in: its state, and running the script against it."""

    def __init__(self, tmp_path: Path) -> None:
        self.management = str(uuid.uuid4())
        self.state_file = tmp_path / "state.json"
        self.state_file.write_text(
            json.dumps(
                {
                    "policies": {},
                    "tokens": [
                        {
                            "AccessorID": str(uuid.uuid4()),
                            "SecretID": self.management,
                            "Description": "Initial Management Token",
                            "Policies": ["global-management"],
                        }
                    ],
                }
            )
        )
        self.bin = tmp_path / "bin"
        self.bin.mkdir()
        cli = self.bin / "consul"
        cli.write_text(f"#!{sys.executable}\n{FAKE_CONSUL}")
        cli.chmod(0o755)

    def run(self, secrets: dict[str, str]) -> subprocess.CompletedProcess[str]:
        env = {
            "PATH": f"{self.bin}{os.pathsep}{os.environ['PATH']}",
            "FAKE_CONSUL_STATE": str(self.state_file),
            "CONSUL_HTTP_TOKEN": self.management,
            **secrets,
        }
        return subprocess.run(
            ["sh", str(BOOTSTRAP_SCRIPT)], env=env, capture_output=True, text=True, timeout=60
        )

    def state(self) -> dict[str, Any]:
        return json.loads(self.state_file.read_text())

    def tokens(self) -> dict[str, dict[str, Any]]:
        """Description -> token, the management token left out; a description twice fails."""
        made = [t for t in self.state()["tokens"] if t["SecretID"] != self.management]
        by_description = {t["Description"]: t for t in made}
        assert len(by_description) == len(made), "two tokens for one principal"
        return by_description


@pytest.fixture
def consul(tmp_path: Path) -> Consul:
    return Consul(tmp_path)


def test_a_first_run_makes_a_policy_and_one_token_per_principal(consul: Consul):
    secrets = new_secrets()
    result = consul.run(secrets)
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("consul-acl-init: done")
    state = consul.state()
    tokens = consul.tokens()
    assert set(tokens) == {f"{p.name} (docker-compose)" for p in PRINCIPALS}
    for principal in PRINCIPALS:
        token = tokens[f"{principal.name} (docker-compose)"]
        assert token["SecretID"] == secrets[principal.token_variable]
        assert token["Policies"] == [principal.name], "its own policy, and only that"
        rules = state["policies"][principal.name].strip().splitlines()
        assert rules == [rule_line(*rule) for rule in principal.rules]
    assert state["agent_token"] == secrets["CONSUL_TOKEN_CONSUL_AGENT"]


def test_running_it_again_changes_nothing(consul: Consul):
    secrets = new_secrets()
    assert consul.run(secrets).returncode == 0
    before = consul.state()
    again = consul.run(secrets)
    assert again.returncode == 0, again.stderr
    assert consul.state() == before


def test_a_secret_replaced_in_env_replaces_its_token_and_no_other(consul: Consul):
    secrets = new_secrets()
    assert consul.run(secrets).returncode == 0
    before = consul.tokens()
    rotated = {**secrets, "CONSUL_TOKEN_CART_SERVICE": str(uuid.uuid4())}
    result = consul.run(rotated)
    assert result.returncode == 0, result.stderr
    after = consul.tokens()
    cart = "cart-service (docker-compose)"
    assert after[cart]["SecretID"] == rotated["CONSUL_TOKEN_CART_SERVICE"]
    assert after[cart]["AccessorID"] != before[cart]["AccessorID"], "the old token is gone"
    assert {k: v for k, v in after.items() if k != cart} == {
        k: v for k, v in before.items() if k != cart
    }


def test_a_secret_consul_cannot_take_stops_the_run(consul: Consul):
    result = consul.run({**new_secrets(), "CONSUL_TOKEN_PROMETHEUS": "not-a-uuid"})
    assert result.returncode != 0
    assert "must be a UUID" in result.stderr


def test_without_the_management_token_nothing_is_made(consul: Consul):
    consul.management = str(uuid.uuid4())  # a token Consul does not know
    result = consul.run(new_secrets())
    assert result.returncode != 0
    assert consul.state()["policies"] == {}


def test_every_token_the_script_needs_is_one_local_secrets_makes():
    from scripts.local_secrets import COMPOSE_KEYS

    text = BOOTSTRAP_SCRIPT.read_text()
    needed = {p.token_variable for p in PRINCIPALS}
    assert needed <= set(COMPOSE_KEYS) and MANAGEMENT_TOKEN in COMPOSE_KEYS
    assert all(f'"${variable}"' in text for variable in needed)
