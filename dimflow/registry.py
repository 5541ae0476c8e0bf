"""Model registry on MLflow: log a training run, register a version, verify weights on load.

Every model is a folder of files (weights plus a JSON config). A version records each file's
sha256 as a tag; loading downloads the folder and refuses files whose checksum differs.
Promotion uses aliases (`champion`, `challenger`, `previous`), never the deprecated stages.
"""

from __future__ import annotations

import hashlib
import json
import logging
import subprocess
import tempfile
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from dimflow.settings import configure_environment, get_settings

log = logging.getLogger(__name__)
CHAMPION = "champion"
CHALLENGER = "challenger"
PREVIOUS = "previous"  # the champion before the current one: what a rollback returns to
MODEL_NAMES = {"detector": "drawing-detector", "reader": "callout-reader", "segmenter": "drawing-segmenter"}


class ChecksumError(RuntimeError):
    """A model file differs from what the registry recorded for it."""


class RegistryError(RuntimeError):
    """The registry cannot give the requested model."""


class RegistryUnavailable(RegistryError):
    """The registry did not answer, or answered with an error: nothing can be concluded from it."""


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def checksums(folder: Path) -> dict[str, str]:
    return {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file() and p.name != "checksums.json"}


def verify(folder: Path, expected: Mapping[str, str]) -> None:
    """Raise `ChecksumError` unless every expected file is present with its checksum."""
    for name, digest in expected.items():
        path = folder / name
        if not path.is_file():
            raise ChecksumError(f"{path}: missing (the registry recorded it with sha256 {digest[:12]}…)")
        actual = sha256_file(path)
        if actual != digest:
            raise ChecksumError(
                f"{path}: sha256 {actual[:12]}… differs from the registered {digest[:12]}…; "
                "the file was altered or truncated; re-download or re-register the model"
            )


def git_commit(root: Path | None = None) -> str:
    try:
        # git from PATH with fixed arguments: the commit a run is tagged with
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607
            cwd=root or Path.cwd(), capture_output=True, text=True, timeout=10, check=True,
        )  # fmt: skip
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],  # noqa: S607
            cwd=root or Path.cwd(),
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def dataset_hash(folder: Path) -> str:
    """The DVC hash of a dataset folder (as in dvc.lock), or a content hash where DVC has none."""
    lock = Path("dvc.lock")
    if lock.is_file():
        import yaml

        for stage in (yaml.safe_load(lock.read_text()) or {}).get("stages", {}).values():
            for out in stage.get("outs", []):
                if Path(out["path"]).resolve() == folder.resolve():
                    return str(out.get("md5", "unknown"))
    h = hashlib.md5(usedforsecurity=False)
    for p in sorted(folder.rglob("*.json")):
        h.update(p.name.encode())
        h.update(p.read_bytes())
    return h.hexdigest() + ".content"


def tracking_uri() -> str:
    s = get_settings()
    if s.mlflow_tracking_uri:
        return s.mlflow_tracking_uri
    db = s.data_dir.resolve() / "mlflow" / "mlflow.db"
    db.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{db}"


def _client():
    configure_environment()  # no telemetry, no progress bars, bounded request timeouts and retries
    import mlflow
    from mlflow import MlflowClient

    uri = tracking_uri()
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    return mlflow, MlflowClient(tracking_uri=uri, registry_uri=uri)


def _experiment(mlflow, client, name: str) -> str:
    exp = client.get_experiment_by_name(name)
    if exp is not None:
        return exp.experiment_id
    artifacts = get_settings().data_dir.resolve() / "mlflow" / "artifacts"
    artifacts.mkdir(parents=True, exist_ok=True)
    return client.create_experiment(name, artifact_location=artifacts.as_uri())


@dataclass(frozen=True)
class RegisteredModel:
    name: str
    version: int
    run_id: str | None
    path: Path  # local folder holding the verified files

    @property
    def ref(self) -> str:
        return f"{self.name}/{self.version}"


EpochLogger = Callable[[int, Mapping[str, float]], None]


@contextmanager
def training_run(name: str) -> Iterator[tuple[str, EpochLogger]]:
    """An MLflow run that is open while a model trains, so each epoch's metrics show up as they
    come (and stay, marked FAILED, when training breaks). Yields (run id, per-epoch logger)."""
    import time

    from mlflow.entities import Metric

    mlflow, client = _client()
    run = client.create_run(_experiment(mlflow, client, name), tags={"git_commit": git_commit()})
    run_id = run.info.run_id

    def log_epoch(step: int, metrics: Mapping[str, float]) -> None:
        now = int(time.time() * 1000)
        client.log_batch(run_id, metrics=[Metric(k, float(v), now, step) for k, v in metrics.items()])

    try:
        yield run_id, log_epoch
    except BaseException:
        client.set_terminated(run_id, "FAILED")
        raise


def log_and_register(
    name: str,
    model_dir: Path,
    params: Mapping[str, object],
    history: list[Mapping[str, float]],
    final_metrics: Mapping[str, float],
    dataset: str,
    alias: str | None = CHALLENGER,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> RegisteredModel:
    """Log one training run (params, per-epoch metrics, model files, data and code versions)
    and register its model as a new version of `name`. With `run_id` (a `training_run` that
    already logged its epochs live) the run is completed instead of a new one started."""
    from mlflow.exceptions import MlflowException

    mlflow, client = _client()
    exp_id = _experiment(mlflow, client, name)
    sums = checksums(model_dir)
    (model_dir / "checksums.json").write_text(json.dumps(sums, indent=1, sort_keys=True) + "\n")
    with mlflow.start_run(run_id=run_id) if run_id else mlflow.start_run(experiment_id=exp_id) as run:
        mlflow.log_params({k: str(v)[:500] for k, v in params.items()})
        for step, row in enumerate([] if run_id else history):
            mlflow.log_metrics({k: float(v) for k, v in row.items()}, step=step)
        mlflow.log_metrics({f"final_{k}": float(v) for k, v in final_metrics.items()})
        mlflow.set_tags({"dataset_dvc_hash": dataset, "git_commit": git_commit(), **(tags or {})})
        mlflow.log_artifacts(str(model_dir), artifact_path="model")
        source = f"{run.info.artifact_uri}/model"
    try:
        client.create_registered_model(name)
    except MlflowException as exc:
        if exc.error_code != "RESOURCE_ALREADY_EXISTS":
            raise
    mv = client.create_model_version(
        name, source, run_id=run.info.run_id, tags={f"sha256:{k}": v for k, v in sums.items()} | {"dataset": dataset}
    )
    if alias:
        client.set_registered_model_alias(name, alias, mv.version)
    return RegisteredModel(name, int(mv.version), run.info.run_id, model_dir)


def set_alias(name: str, alias: str, version: int) -> None:
    _, client = _client()
    client.set_registered_model_alias(name, alias, str(version))


def _registry_error(name: str, what: str, exc: Exception) -> RegistryUnavailable:
    return RegistryUnavailable(f"{name}: cannot {what} from the MLflow registry at {tracking_uri()}: {exc}")


def _not_found(exc: Exception) -> bool:
    """MLflow's own code for an absent resource (never its message text, which changes between releases)."""
    from mlflow.exceptions import MlflowException

    return isinstance(exc, MlflowException) and exc.error_code == "RESOURCE_DOES_NOT_EXIST"


def versions(name: str) -> list[int]:
    """Every registered version of `name`, newest first (for falling back past a broken champion).

    An unregistered model has none; any other failure (a registry that is down or answers an
    error) raises `RegistryError`: "cannot tell" is never "nothing there"."""
    _, client = _client()
    try:
        found = client.search_model_versions(f"name='{name}'")
    except Exception as exc:
        raise _registry_error(name, "list versions", exc) from exc
    return sorted((int(v.version) for v in found), reverse=True)


def version_by_alias(name: str, alias: str = CHAMPION) -> int | None:
    """The version `alias` points at; None only when the model or the alias does not exist.

    Read from the registered model's alias table: MLflow answers a missing alias with the same
    error code as a malformed request, while a missing model has its own code."""
    _, client = _client()
    try:
        model = client.get_registered_model(name)
    except Exception as exc:
        if _not_found(exc):
            return None
        raise _registry_error(name, f"look up alias '{alias}'", exc) from exc
    version = (model.aliases or {}).get(alias)
    return int(version) if version is not None else None


def load(name: str, alias: str = CHAMPION, version: int | None = None, dest: Path | None = None) -> RegisteredModel:
    """Download a registered version (by alias or number) and verify every file's checksum."""
    mlflow, client = _client()
    if version is None:
        version = version_by_alias(name, alias)
        if version is None:
            raise RegistryError(f"{name}: no alias '{alias}' in the registry at {tracking_uri()}")
    what = f"version {version}"
    try:
        mv = client.get_model_version(name, str(version))
    except Exception as exc:
        if _not_found(exc):
            raise RegistryError(f"{name}: no {what} in the registry at {tracking_uri()}") from exc
        raise _registry_error(name, f"get {what}", exc) from exc
    expected = {k.removeprefix("sha256:"): v for k, v in mv.tags.items() if k.startswith("sha256:")}
    if not expected:
        raise RegistryError(f"{name}/{mv.version}: no checksums recorded; refusing to load unverified weights")
    dest = dest or (get_settings().data_dir.resolve() / "models" / name / str(mv.version))
    if not dest.is_dir() or any(not (dest / f).is_file() for f in expected):
        dest.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:  # same file system: moves are atomic
            got = Path(mlflow.artifacts.download_artifacts(artifact_uri=mv.source, dst_path=tmp))
            for f in got.iterdir():
                f.replace(dest / f.name)
    verify(dest, expected)
    return RegisteredModel(name, int(mv.version), mv.run_id, dest)


def delete_alias(name: str, alias: str) -> None:
    _, client = _client()
    try:
        client.delete_registered_model_alias(name, alias)
    except Exception as exc:
        if not _not_found(exc):
            raise _registry_error(name, f"delete alias '{alias}'", exc) from exc


def model_record(name: str) -> tuple[dict[str, int], dict[str, str]]:
    """A registered model's aliases (alias -> version) and its tags; RegistryError when it is not registered."""
    _, client = _client()
    try:
        model = client.get_registered_model(name)
    except Exception as exc:
        if _not_found(exc):
            raise RegistryError(f"{name}: not registered in the registry at {tracking_uri()}") from exc
        raise _registry_error(name, "read", exc) from exc
    return {a: int(v) for a, v in (model.aliases or {}).items()}, dict(model.tags or {})


def set_model_tag(name: str, key: str, value: str) -> None:
    _, client = _client()
    client.set_registered_model_tag(name, key, value)


def version_facts(name: str, only: int | None = None) -> list[dict]:
    """Every version of `name` (or the one numbered `only`), oldest first: number, when it was
    registered, its tags, and its run's final metrics, data hash and commit."""
    _, client = _client()
    try:
        found = client.search_model_versions(f"name='{name}'")
    except Exception as exc:
        raise _registry_error(name, "list versions", exc) from exc
    out = []
    for v in sorted(found, key=lambda v: int(v.version)):
        if only is not None and int(v.version) != only:
            continue  # its run is not read
        metrics, run_tags = {}, {}
        if v.run_id:
            try:
                run = client.get_run(v.run_id)
                metrics = {k.removeprefix("final_"): m for k, m in run.data.metrics.items() if k.startswith("final_")}
                run_tags = run.data.tags
            except Exception as exc:  # a deleted run: the version still counts
                log.warning("%s/%s: run %s unreadable: %s", name, v.version, v.run_id, exc)
        out.append({"version": int(v.version), "created_ms": int(v.creation_timestamp or 0),
                    "tags": {k: t for k, t in (v.tags or {}).items() if not k.startswith("sha256:")},
                    "metrics": metrics, "dataset": run_tags.get("dataset_dvc_hash"),
                    "commit": run_tags.get("git_commit")})  # fmt: skip
    return out


def set_version_tag(name: str, version: int, key: str, value: str) -> None:
    _, client = _client()
    client.set_model_version_tag(name, str(version), key, value)
