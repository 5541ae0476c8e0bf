"""`prefect deploy --all` against a real local Prefect server: the pools `dimflow pools setup` makes
(`gpu` as Kubernetes with its NVIDIA request), the `gpu` concurrency limit, every deployment of
prefect.yaml on its pool, and `retrain` on its weekly schedule."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
import yaml

from tests.servers import free_port, stop, wait_until_answers

pytestmark = [pytest.mark.integration, pytest.mark.slow]
BIN = Path(sys.executable).parent
ROOT = Path(__file__).resolve().parents[2]


def test_pools_limit_and_every_deployment_land_on_a_local_server(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DIMFLOW_", "PREFECT_"))}
    env.update(PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false", DO_NOT_TRACK="1",
               MLFLOW_DISABLE_TELEMETRY="true", DIMFLOW_DATA_DIR=str(tmp_path / "data"), DIMFLOW_HOME=str(ROOT),
               PREFECT_LOGGING_LEVEL="WARNING", PATH=f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}")  # fmt: skip
    port = free_port()
    log = tmp_path / "prefect.log"
    server = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1", "--port", str(port)],
                              env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT)  # fmt: skip
    api = f"http://127.0.0.1:{port}/api"
    try:
        wait_until_answers(server, f"{api}/health", "prefect server", 240, lambda: log.read_text(errors="replace"))
        env["PREFECT_API_URL"] = api
        work = tmp_path / "checkout"  # deploy from a copy: `prefect deploy` may write beside prefect.yaml
        work.mkdir()
        for name in ("prefect.yaml", "flows", "tasks", "blocks", "deployments"):
            src = ROOT / name
            (shutil.copytree if src.is_dir() else shutil.copy)(src, work / name)
        run = lambda *a: subprocess.run([*a], cwd=work, env=env, capture_output=True, text=True, timeout=600)  # noqa: E731
        setup = run(str(BIN / "dimflow"), "pools", "setup", "--gpu-type", "kubernetes", "--gpu-limit", "2")
        assert setup.returncode == 0, setup.stdout + setup.stderr
        deploy = run(str(BIN / "prefect"), "--no-prompt", "deploy", "--all")
        assert deploy.returncode == 0, deploy.stdout[-3000:] + deploy.stderr[-3000:]
        with httpx.Client(base_url=api, timeout=30) as h:
            pools = {p["name"]: p for p in h.post("/work_pools/filter", json={}).json()}
            assert pools["cpu"]["type"] == "process" and pools["gpu"]["type"] == "kubernetes"
            manifest = pools["gpu"]["base_job_template"]["job_configuration"]["job_manifest"]
            limits = manifest["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
            assert limits["nvidia.com/gpu"] == "{{ gpu_count }}"
            assert h.get("/v2/concurrency_limits/gpu").json()["limit"] == 2
            deployed = {d["name"]: d for d in h.post("/deployments/filter", json={}).json()}
        wanted = {d["name"]: d for d in yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]}
        assert set(deployed) == set(wanted)
        for name, d in deployed.items():
            assert d["work_pool_name"] == wanted[name]["work_pool"]["name"], name
        assert [s["schedule"]["cron"] for s in deployed["retrain"]["schedules"]] == ["0 3 * * 1"]
        assert {"train-segmenter", "train-reader", "train-detector", "promote-model", "rollback-model"} <= set(deployed)
    finally:
        stop(server, 30)
