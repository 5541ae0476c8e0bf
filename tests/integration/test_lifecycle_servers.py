"""The model lifecycle as an operator runs it, against a real Prefect server and a real MLflow
server (both started here, on loopback): `prefect deploy --all` (whose build step registers the
shipped models), workers on the `cpu` and `gpu` pools, then through deployments only:

1. a drawing is processed with the shipped champion;
2. `retrain` with tiny parameters trains a candidate worse than the shipped segmenter: kept as `challenger`;
3. a bad segmenter is promoted by hand (`promote-model`);
4. `retrain` trains a candidate better than it: promoted, the bad one becomes `previous`; a drawing
   is processed with the new champion;
5. `rollback-model` puts `previous` back; a drawing is processed with it.

Each processed drawing's result names the segmenter version that made it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from dimflow import registry
from dimflow.settings import get_settings
from tests.datasets import scrambled_segmenter, write_splits
from tests.servers import BIN, drop_database, postgres_database, start_mlflow, start_prefect, stop

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]
ROOT = Path(__file__).resolve().parents[2]
SEGMENTER = "drawing-segmenter"
TINY = {"epochs": 3, "max_train": 3, "max_val": 2, "workers": 1, "lr": 0.01}
FINAL = {"COMPLETED", "FAILED", "CRASHED", "CANCELLED"}


class Stack:
    """The servers, the workers and an API client, with what a failing step needs to say why."""

    def __init__(self, root: Path, api: str, env: dict[str, str]) -> None:
        self.root, self.api, self.env = root, api, env
        self.http = httpx.Client(base_url=api, timeout=30)
        self.logs: list[Path] = []

    def tail(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-2500:]}" for p in self.logs if p.exists())

    def run(self, deployment: str, timeout_s: float = 600, **parameters) -> str:
        """Create a run of a deployment, as the UI's 'Run' button does, and wait for it to end."""
        dep = self.http.get(f"/deployments/name/{deployment}")
        assert dep.status_code == 200, dep.text
        for wait in (1, 2, 4, 0):  # a sqlite-backed server answers 503 while its database is locked
            run = self.http.post(f"/deployments/{dep.json()['id']}/create_flow_run", json={"parameters": parameters})
            if run.status_code != 503 or not wait:
                break
            time.sleep(wait)
        assert run.status_code == 201, run.text
        run_id = run.json()["id"]
        deadline = time.monotonic() + timeout_s
        while (state := self.http.get(f"/flow_runs/{run_id}").json()["state"])["type"] not in FINAL:
            assert time.monotonic() < deadline, f"{deployment} still {state['type']} after {timeout_s} s\n{self.tail()}"
            time.sleep(1)
        if state["type"] != "COMPLETED":
            logs = self.http.post("/logs/filter", json={"logs": {"flow_run_id": {"any_": [run_id]}}}).json()
            pytest.fail(f"{deployment}: {state['type']} {state.get('message')}\n"
                        + "\n".join(x["message"][-1500:] for x in logs[-15:]) + "\n" + self.tail())  # fmt: skip
        return run_id

    def artifacts(self, run_id: str) -> list[str]:
        found = self.http.post("/artifacts/filter", json={"artifacts": {"flow_run_id": {"any_": [run_id]}}}).json()
        return [a["data"] if isinstance(a["data"], str) else json.dumps(a["data"]) for a in found]

    def processed_with(self, drawing: Path) -> str:
        """Process `drawing` through the `process-drawing` deployment; the segmenter its result names."""
        before = set((self.root / "store").rglob("*.json"))
        self.run("process-drawing/process-drawing", path=str(drawing))
        (new,) = [p for p in set((self.root / "store" / "results").rglob("*.json")) - before]
        return json.loads(new.read_text())["models"]["segmenter"]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("lifecycle-servers")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIMFLOW_", "PREFECT_"))}
    env.update(DO_NOT_TRACK="1", MLFLOW_DISABLE_TELEMETRY="true", PREFECT_LOGGING_LEVEL="WARNING",
               PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # fmt: skip
    procs: list[subprocess.Popen] = []
    db_url, db = postgres_database()  # Prefect's production database; sqlite where the machine has none
    try:
        with ThreadPoolExecutor(2) as pool:  # each takes tens of seconds to start: side by side
            starting = [pool.submit(start_mlflow, root / "mlflow", env),
                        pool.submit(start_prefect, root / "prefect-home", env, db_url)]  # fmt: skip
        procs += [f.result()[0] for f in starting if f.exception() is None]
        (_, tracking), (_, api) = (f.result() for f in starting)  # a failed start fails here, after both are known
        env.update(PREFECT_API_URL=api, PREFECT_HOME=str(root / "prefect-home"), DIMFLOW_HOME=str(ROOT),
                   DIMFLOW_MLFLOW_TRACKING_URI=tracking, DIMFLOW_DATA_DIR=str(root / "data"),
                   DIMFLOW_STORAGE_URL=str(root / "store"), PREFECT_WORKER_QUERY_SECONDS="1")  # fmt: skip
        s = Stack(root, api, env)
        work = root / "checkout"  # deploy from a copy: `prefect deploy` may write beside prefect.yaml
        work.mkdir()
        for name in ("prefect.yaml", "flows", "tasks", "blocks", "deployments"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
        run = lambda *a: subprocess.run([*a], cwd=work, env=env, capture_output=True, text=True, timeout=600)  # noqa: E731
        setup = run(str(BIN / "dimflow"), "pools", "setup", "--gpu-type", "process", "--gpu-limit", "1")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        deploy = run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        for pool in ("cpu", "gpu"):
            log = root / f"worker-{pool}.log"
            s.logs.append(log)
            cmd = [str(BIN / "prefect"), "worker", "start", "--pool", pool, "--limit", "1"]
            procs.append(subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT))
        yield s
    finally:
        for p in reversed(procs):
            stop(p, 30)
        drop_database(db)


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_splits(tmp_path_factory.mktemp("lifecycle-data"), train=(3, 31), val=(2, 32), gate=(2, 33))


@pytest.fixture
def registry_of(stack: Stack, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """This test process reads (and writes) the same MLflow server the workers use."""
    monkeypatch.setenv("DIMFLOW_MLFLOW_TRACKING_URI", stack.env["DIMFLOW_MLFLOW_TRACKING_URI"])
    monkeypatch.setenv("DIMFLOW_DATA_DIR", str(stack.root / "test-data"))
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


def test_deploy_retrain_promote_keep_rollback_and_serve_each_champion(
    stack: Stack, data: Path, registry_of: None, tmp_path: Path
) -> None:
    deployed = {d["name"]: d for d in stack.http.post("/deployments/filter", json={}).json()}
    wanted = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
    assert set(deployed) == set(wanted)
    assert [s["schedule"]["cron"] for s in deployed["retrain"]["schedules"]] == ["0 3 * * 1"]
    assert {d["work_pool_name"] for n, d in deployed.items() if n.startswith(("train-", "retrain"))} == {"gpu"}
    assert stack.http.get("/v2/concurrency_limits/gpu").json()["limit"] == 1
    pools = {p["name"]: p["type"] for p in stack.http.post("/work_pools/filter", json={}).json()}
    assert pools["cpu"] == pools["gpu"] == "process"
    for kind in ("kubernetes", "docker"):  # the server accepts the GPU templates a cluster or GPU host uses
        template = json.loads((ROOT / "infra" / "pools" / f"gpu-{kind}.json").read_text())
        pool = {"name": f"gpu-{kind}", "type": kind, "base_job_template": template}
        made = stack.http.post("/work_pools/", json=pool)
        assert made.status_code == 201, made.text
    assert registry.version_by_alias(SEGMENTER) == 1  # the deploy's build step registered the shipped models

    drawing = next((data / "gate" / "images").glob("*.png"))
    retrain = dict(models=["segmenter"], data=str(data), gate=str(data / "gate"), real=None,
                   params={"segmenter": TINY}, fine_tune=False, force=True)  # fmt: skip
    assert stack.processed_with(drawing) == f"{SEGMENTER}/1"

    # a candidate trained from scratch for a few steps is worse than the shipped segmenter
    decisions = "\n".join(stack.artifacts(stack.run("retrain/retrain", **retrain)))
    assert f"| {SEGMENTER}/2 | kept as challenger |" in decisions, decisions
    assert registry.version_by_alias(SEGMENTER) == 1 and registry.version_by_alias(SEGMENTER, registry.CHALLENGER) == 2

    bad = registry.log_and_register(SEGMENTER, scrambled_segmenter(tmp_path / "bad"), {}, [], {}, "noise", alias=None)
    stack.run("promote-model/promote-model", model=SEGMENTER, version=bad.version, reason="a bad promotion by hand")
    assert registry.version_by_alias(SEGMENTER) == bad.version == 3

    # the same training beats noise: promoted, and the bad one is kept as `previous`
    decisions = "\n".join(stack.artifacts(stack.run("retrain/retrain", **retrain)))
    assert f"| {SEGMENTER}/4 | promoted |" in decisions, decisions
    assert registry.version_by_alias(SEGMENTER) == 4 and registry.version_by_alias(SEGMENTER, registry.PREVIOUS) == 3
    gate = json.loads(registry.version_facts(SEGMENTER, only=4)[0]["tags"]["gate"])
    assert gate["candidate"]["metric"] > gate["champion"]["metric"] and gate["dataset"] and gate["commit"]
    assert stack.processed_with(drawing) == f"{SEGMENTER}/4"

    stack.run("rollback-model/rollback-model", model=SEGMENTER, reason="test")
    assert registry.version_by_alias(SEGMENTER) == 3
    assert stack.processed_with(drawing) == f"{SEGMENTER}/3"

    history = subprocess.run([str(BIN / "dimflow"), "models", "history", SEGMENTER, "--json"], env=stack.env,
                             capture_output=True, text=True, timeout=120, check=True)  # fmt: skip
    moves = [(m["action"], m["version"], m["by"]) for m in json.loads(history.stdout)["moves"]]
    assert moves[-3:] == [("promote", 3, "prefect"), ("promote", 4, "retrain"), ("rollback", 3, "prefect")]
    table = subprocess.run([str(BIN / "dimflow"), "models", "history", SEGMENTER], env=stack.env | {"COLUMNS": "160"},
                           capture_output=True, text=True, timeout=120, check=True).stdout  # fmt: skip
    (stack.root / "history.txt").write_text(table)  # what an ML engineer sees (kept with the test's files)
    rows = {line.split("│")[1].strip(): line.split("│")[2].strip() for line in table.splitlines()
            if line.count("│") > 3 and line.split("│")[1].strip().isdigit()}  # fmt: skip
    assert rows == {"1": "previous", "2": "", "3": "champion", "4": ""}, table  # v1: what v3 replaced
    assert "rollback drawing-segmenter: 4 -> 3 by prefect" in table, table
