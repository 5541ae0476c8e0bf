"""infra/docker/compose.yaml stays in step with the code it runs. No Docker daemon here, so this
checks what can go stale without one: ports on loopback only, every DIMFLOW_* variable a setting,
every secret in the example env file, dependencies that exist, buckets for every S3 URL used, and
the image carrying every package the services import."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from dimflow.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
DOCKER = ROOT / "infra" / "docker"
COMPOSE = yaml.safe_load((DOCKER / "compose.yaml").read_text())
SERVICES = COMPOSE["services"]


def _settings_env_names() -> set[str]:
    names = set()
    for name, field in Settings.model_fields.items():
        names.add(f"DIMFLOW_{name.upper()}")
        if field.validation_alias is not None:
            names.update(getattr(field.validation_alias, "choices", [field.validation_alias]))
    return names


def test_every_published_port_is_on_loopback() -> None:
    for name, svc in SERVICES.items():
        for port in svc.get("ports", []):
            assert str(port).startswith("127.0.0.1:"), f"{name} publishes {port} beyond loopback"


def test_dimflow_variables_are_settings_and_secrets_come_from_the_env_file() -> None:
    known = _settings_env_names()
    for name, svc in SERVICES.items():
        for var in svc.get("environment", {}) or {}:
            if var.startswith("DIMFLOW_"):
                assert var in known, f"{name}: {var} is not a dimflow setting"
    text = (DOCKER / "compose.yaml").read_text()
    required = set(re.findall(r"\$\{([A-Z_]+):\?", text))
    example = {line.split("=", 1)[0] for line in (DOCKER / "stack.env.example").read_text().splitlines()
               if line and not line.startswith("#")}  # fmt: skip
    assert required <= example, f"missing from stack.env.example: {required - example}"


def test_dependencies_exist_and_buckets_cover_every_s3_url() -> None:
    for name, svc in SERVICES.items():
        for dep, cond in (svc.get("depends_on") or {}).items():
            assert dep in SERVICES, f"{name} depends on unknown {dep}"
            if cond["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[dep], f"{name} waits for {dep} to be healthy; it has no healthcheck"
    script = " ".join(SERVICES["minio-buckets"]["command"])
    made = set(re.findall(r"mc mb --ignore-existing local/([a-z0-9-]+)", script))
    used = set(re.findall(r"s3://([a-z0-9-]+)", (DOCKER / "compose.yaml").read_text()))
    assert used <= made, f"buckets used but never made: {used - made}"
    init = (DOCKER / "initdb" / "01-databases.sql").read_text()
    for db in set(re.findall(r"@postgres:5432/([a-z]+)", (DOCKER / "compose.yaml").read_text())) - {"dimflow"}:
        assert f"CREATE DATABASE {db} " in init, db


def test_the_image_carries_every_package_the_services_run() -> None:
    dockerfile = (DOCKER / "Dockerfile").read_text()
    packages = re.search(r"include = \[(.*?)\]", (ROOT / "pyproject.toml").read_text()).group(1)
    for pkg in re.findall(r'"([a-z]+)\*"', packages):
        assert f"COPY {pkg} ./{pkg}" in dockerfile, f"the image lacks the {pkg} package"
    for needed in ("prefect.yaml", "models", "samples"):
        assert needed in dockerfile


def test_the_stacks_prefect_server_records_task_runs_as_the_service_is_measured_with() -> None:
    from service.prefect_server import SERVER_ENV

    env = SERVICES["prefect"]["environment"]
    assert {k: str(env.get(k)) for k in SERVER_ENV} == SERVER_ENV
