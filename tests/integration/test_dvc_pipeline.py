"""`dvc repro` regenerates the dataset splits offline from a clean checkout."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
pytestmark = [pytest.mark.integration, pytest.mark.slow]


def _run(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    env = os.environ | {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "DVC_NO_ANALYTICS": "1",
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@localhost",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@localhost",
    }
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_dvc_repro_generates_tracked_splits(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    for name in ("dvc.yaml", "params.yaml", ".dvcignore"):
        shutil.copy(ROOT / name, repo / name)
    shutil.copytree(ROOT / "dimflow", repo / "dimflow", ignore=shutil.ignore_patterns("__pycache__"))
    params = yaml.safe_load((repo / "params.yaml").read_text())
    for split in [*params["splits"].values(), *params["cad_splits"].values()]:
        split["n"] = 1
    (repo / "params.yaml").write_text(yaml.safe_dump(params))
    dvc = [sys.executable, "-m", "dvc"]
    assert _run(["git", "init", "-q"], repo).returncode == 0
    init = _run([*dvc, "init", "-q"], repo)
    assert init.returncode == 0, init.stderr
    _run([*dvc, "config", "core.analytics", "false"], repo)
    repro = _run([*dvc, "repro"], repo)
    assert repro.returncode == 0, repro.stdout + repro.stderr
    for split in params["splits"]:
        assert len(list((repo / "data" / "synth" / split / "truth").glob("*.json"))) == 1
    for split in params["cad_splits"]:
        assert len(list((repo / "data" / "synth" / split / "pdf").glob("*.pdf"))) == 1
    lock = yaml.safe_load((repo / "dvc.lock").read_text())
    assert {f"synth@{s}" for s in params["splits"]} <= set(lock["stages"])
    assert {f"synth_cad@{s}" for s in params["cad_splits"]} <= set(lock["stages"])
    ignored = _run(["git", "check-ignore", "data/synth/train"], repo)
    assert ignored.returncode == 0, "generated data must be ignored by git (DVC tracks it)"
    again = _run([*dvc, "repro"], repo)
    assert again.returncode == 0 and "didn't change" in (again.stdout + again.stderr)
