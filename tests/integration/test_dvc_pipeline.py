"""The DVC pipeline from data to metrics, tiny: a clean clone runs `dvc repro` offline (synthetic
splits -> the labelled real sheets imported -> each model trained -> scored into metrics.json),
pushes its data and models to an S3 remote (moto's server on loopback), and a second clean clone
pulls exactly them back with nothing left to run; a changed parameter reruns only what depends on
it and `dvc metrics diff` shows what moved."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import boto3
import pytest
import yaml

from tests.servers import BIN, free_port, stop, wait_until_answers

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.e2e]
TINY_TRAIN = {
    "segmenter": {"epochs": 1, "max_train": 3, "max_val": 2, "workers": 1},
    "reader": {"epochs": 1, "max_train": 24, "max_val": 8, "orient_epochs": 1, "extra_train": ["cad_train"],
               "extra_val": ["cad_val"]},
    "detector": {"epochs": 1, "imgsz": 320, "batch": 2, "max_train": 3, "max_val": 2, "workers": 0},
}


def _tree(folder: Path) -> dict[str, str]:
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}  # fmt: skip


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DIMFLOW_", "AWS_"))}
    aws = tmp_path_factory.mktemp("aws") / "none"
    aws.write_text("")  # aiobotocore refuses /dev/null as a config file
    return base | {
        "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "DIMFLOW_DATA_DIR": str(tmp_path_factory.mktemp("dvc-data")),  # training caches, not the repo's data/
        "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@localhost",
        # dummy credentials for moto; no profile or real account can leak in
        "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_CONFIG_FILE": str(aws), "AWS_SHARED_CREDENTIALS_FILE": str(aws),
    }  # fmt: skip


def _client(url: str):
    return boto3.client("s3", endpoint_url=url, aws_access_key_id="testing", aws_secret_access_key="testing",
                        region_name="us-east-1")  # fmt: skip


@pytest.fixture(scope="module")
def s3(env: dict[str, str]) -> str:
    port = free_port()
    proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until_answers(proc, f"{url}/moto-api/", "moto_server", 60, lambda: "")
        _client(url).create_bucket(Bucket="dimflow-dvc")
        yield url
    finally:
        stop(proc, 10)


def _run(args: list[str], cwd: Path, env: dict[str, str], timeout: int = 900) -> str:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"{' '.join(args)}\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done.stdout + done.stderr


def _origin(tmp_path: Path, env: dict[str, str], s3: str) -> Path:
    """A git repository of the project's pipeline with tiny parameters and the S3 remote configured."""
    repo = tmp_path / "origin"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "dimflow", repo / "dimflow", ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(ROOT / "samples" / "real", repo / "samples" / "real")
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for split, n in {"train": 3, "val": 2, "test": 1, "gate": 2, "cad_train": 1}.items():
        params["splits"][split]["n"] = n
    for split in params["cad_splits"].values():
        split["n"] = 1
    params["train"] = TINY_TRAIN
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = [sys.executable, "-m", "dvc"]
    _run(["git", "init", "-q", "-b", "main"], repo, env)
    _run([*dvc, "init", "-q"], repo, env)
    _run([*dvc, "config", "core.analytics", "false"], repo, env)
    _run([*dvc, "remote", "add", "-d", "store", "s3://dimflow-dvc/cache"], repo, env)
    _run([*dvc, "remote", "modify", "store", "endpointurl", s3], repo, env)
    _run(["git", "add", "-A"], repo, env)
    _run(["git", "commit", "-q", "-m", "pipeline"], repo, env)
    return repo


def test_repro_push_pull_and_metrics_from_clean_clones(tmp_path: Path, env: dict[str, str], s3: str) -> None:
    dvc = [sys.executable, "-m", "dvc"]
    origin = _origin(tmp_path, env, s3)
    a, b = tmp_path / "a", tmp_path / "b"
    _run(["git", "clone", "-q", str(origin), str(a)], tmp_path, env)

    _run([*dvc, "repro"], a, env)
    metrics = json.loads((a / "metrics.json").read_text())
    assert set(metrics) == {"segmenter", "reader", "detector", "pipeline"}
    assert {"gate_value_f1", "real_value_f1", "real_ocr_value_f1"} <= set(metrics["pipeline"])
    assert all(0.0 <= v <= 1.0 for figures in metrics.values() for k, v in figures.items() if not k.startswith("n_"))
    assert metrics["detector"]["n_truth"] > 0 and metrics["pipeline"]["real_value_f1"] > 0.9  # text layer
    for key in TINY_TRAIN:
        trained = json.loads((a / "models" / "trained" / key / "metrics.json").read_text())
        assert {k: trained["params"][k] for k in TINY_TRAIN[key]} == TINY_TRAIN[key]
    assert len(list((a / "data" / "real" / "labels").glob("*.json"))) == 3
    shown = json.loads(_run([*dvc, "metrics", "show", "--json"], a, env).split("\n", 1)[0] or "{}")
    assert shown, "dvc metrics show printed nothing"
    assert _run(["git", "check-ignore", "data/synth/train", "models/trained/segmenter"], a, env)
    _run(["git", "add", "-A"], a, env)
    _run(["git", "commit", "-q", "-m", "repro"], a, env)
    _run([*dvc, "push"], a, env)
    listed = _client(s3).list_objects_v2(Bucket="dimflow-dvc")
    assert listed["KeyCount"] > 0

    _run(["git", "clone", "-q", str(a), str(b)], tmp_path, env)
    assert not (b / "models" / "trained" / "segmenter").exists() and not (b / "data" / "real").exists()
    _run([*dvc, "pull"], b, env)
    for out in ("data/synth/train", "data/synth/gate", "data/real", "models/trained/detector", "models/trained/reader"):
        assert _tree(b / out) == _tree(a / out), out
    status = _run([*dvc, "status"], b, env)
    assert "up to date" in status, status
    assert "didn't change" in _run([*dvc, "repro"], b, env)

    # one parameter changed: only its model is trained again and scored; the diff shows what moved
    params = yaml.safe_load((b / "params.yaml").read_text())
    params["train"]["segmenter"]["epochs"] = 2
    (b / "params.yaml").write_text(yaml.safe_dump(params))
    again = _run([*dvc, "repro"], b, env)
    assert "Running stage 'train@segmenter'" in again and "Running stage 'evaluate'" in again
    assert "Running stage 'train@detector'" not in again and "Running stage 'synth@train'" not in again
    diff = json.loads(_run([*dvc, "metrics", "diff", "--json"], b, env).strip().splitlines()[-1])
    assert "metrics.json" in diff.get("diff", diff), diff
