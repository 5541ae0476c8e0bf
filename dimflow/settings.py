"""One settings object for dimflow: embedded defaults, overridden by DIMFLOW_* variables.

This module is also the one place dimflow writes process environment variables: some libraries
(MLflow's HTTP client, Prefect's local server, ultralytics) read their configuration only from
there, so `configure_environment()` sets theirs from `Settings`, once, before they are used.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

if TYPE_CHECKING:
    from dimflow.inputs import Limits

_SHIPPED_MODELS = Path(__file__).resolve().parent.parent / "models" / "baseline"


class Settings(BaseSettings):
    """Where dimflow keeps its data, which registry and storage it uses, and what input it accepts."""

    model_config = SettingsConfigDict(env_prefix="DIMFLOW_", env_file=".env", extra="ignore", populate_by_name=True)

    data_dir: Path = Field(default=Path("data"), description="Datasets, local registry and results.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry URI; default: a sqlite file under data_dir/mlflow."
    )
    registry_timeout_s: int = Field(
        default=15, ge=1, le=120, description="Seconds one MLflow registry request may take before it fails."
    )
    registry_retries: int = Field(
        default=2, ge=0, le=10, description="Retries of a failed registry request (1 s, 2 s, ... backoff)."
    )
    baseline_dir: Path = Field(
        default=_SHIPPED_MODELS,
        description="The shipped model set `dimflow models bootstrap` registers (an image keeps it beside the code).",
    )
    storage_url: str | None = Field(
        default=None, description="Where pages and results go: a folder or s3://bucket/prefix; default: data_dir/store."
    )
    # ---- S3 server-side encryption of every object dimflow writes (dimflow/storage.py)
    s3_sse: Literal["AES256", "aws:kms"] | None = Field(
        default=None, description="S3 server-side encryption of written objects: AES256 (SSE-S3) or aws:kms (SSE-KMS)."
    )
    s3_sse_kms_key_id: str | None = Field(
        default=None, description="KMS key (id, ARN or alias) for aws:kms; none: the account's aws/s3 managed key."
    )
    redis_url: str | None = Field(
        default=None, description="Redis for the whole-drawing result cache (redis://host:6379/0); none: no cache."
    )
    redis_timeout_s: float = Field(default=0.5, gt=0, le=10, description="Seconds one cache call may take.")
    cache_ttl_s: int = Field(default=30 * 24 * 3600, ge=1, description="How long a cached result is kept.")
    pdf_dpi: float = Field(default=200.0, gt=0, le=1200, description="Resolution PDF pages are rendered at.")
    max_pixels: int = Field(default=120_000_000, ge=1, description="Largest page accepted, in pixels.")
    max_pages: int = Field(default=50, ge=1, description="Most pages accepted in one PDF.")
    max_bytes: int = Field(default=200 * 2**20, ge=1, description="Largest input file accepted, in bytes.")
    # ---- API security (service/auth.py, service/limits.py, service/audit.py)
    jwt_secret: SecretStr | None = Field(
        default=None,
        validation_alias=AliasChoices("DIMFLOW_JWT_SECRET", "DIMFLOW_API_SECRET"),
        description="HS256 key API tokens are signed with (>= 32 chars); default: generated once into "
        "data_dir/api-secret.",
    )
    jwt_public_key: Path | None = Field(
        default=None, description="PEM public key of an identity provider: tokens are RS256/ES256, checked with it."
    )
    jwt_jwks: Path | None = Field(
        default=None, description="JWKS file of an identity provider: tokens are RS256/ES256, key chosen by `kid`."
    )
    jwt_issuer: str = Field(default="dimflow", description="The `iss` every token must carry.")
    jwt_audience: str = Field(default="dimflow-api", description="The `aud` every token must carry.")
    rate_limit_submit: str = Field(
        default="60/minute", description="Submissions per subject (the `limits` library's notation)."
    )
    rate_limit_read: str = Field(default="600/minute", description="Status/result reads per subject.")
    rate_limit_address: str = Field(
        default="1200/minute", description="Requests per client address, all routes (many users share a NAT)."
    )
    audit_url: str | None = Field(
        default=None, description="SQLAlchemy URL of the audit log; default: sqlite file data_dir/audit.db."
    )
    trusted_proxies: list[str] = Field(
        default_factory=lambda: ["127.0.0.1", "::1"],
        description="Addresses whose X-Forwarded-For names the client (the TLS proxy in front).",
    )
    workers: int = Field(default=2, ge=0, le=64, description="Warm worker processes `dimflow api` starts (0: none).")
    job_attempts: int = Field(
        default=2, ge=1, le=10, description="Runs a job gets when its worker process dies under it, before it fails."
    )
    job_poll_s: float = Field(
        default=1.0, gt=0, le=60, description="How often a worker asks Prefect for queued jobs no hint woke it for."
    )
    onnx_spinning: bool = Field(
        default=True,
        description="ONNX Runtime threads spin between ops (fastest alone; the service's workers turn it off).",
    )
    compute_lock: Path | None = Field(
        default=None, description="Lock file(s) through which one machine's workers share its cores (service)."
    )
    shadow_share: float = Field(
        default=0.0,
        ge=0.0,
        le=1.0,
        description="Share of the pages a service worker also reads with the challengers, recording agreement.",
    )
    champion_poll_s: float = Field(
        default=2.0, gt=0, le=300, description="How often a service worker looks for new champions in the registry."
    )
    compute_share: Literal["threads", "turns"] = Field(
        default="threads",
        description="How those workers' model stages share the cores: side by side with the cores divided "
        "among them (threads), or one at a time with every core (turns).",
    )
    max_upload_files: int = Field(default=20, ge=1, le=1000, description="Most files one job may hold.")
    synth_seed: int = Field(default=1, description="Default seed of the synthetic generator.")
    synth_degrade_share: float = Field(default=0.3, ge=0.0, le=1.0, description="Share of degraded drawings.")

    def limits(self) -> Limits:
        """What one input file may cost (size, pixels, pages) and the dpi PDF pages render at."""
        from dimflow.inputs import Limits

        return Limits(
            max_bytes=self.max_bytes, max_pixels=self.max_pixels, max_pages=self.max_pages, pdf_dpi=self.pdf_dpi
        )

    def ultralytics_dir(self) -> Path:
        return self.data_dir.resolve() / "ultralytics"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def configure_environment(settings: Settings | None = None, log_level: str | None = None) -> None:
    """Embedded defaults for the libraries that read only environment variables; variables already
    set win. Idempotent. No telemetry leaves an air-gapped plant; a registry that does not answer
    fails a request in `registry_timeout_s` after `registry_retries` retries (MLflow's own default,
    7 retries with a 2x backoff and a 120 s timeout, hangs a run for minutes); a cold 2-core machine
    starts Prefect's local server within its timeout; ultralytics stays offline in its own folder.
    `log_level` sets Prefect's (the CLI's --quiet)."""
    s = settings or get_settings()
    defaults = {
        "DO_NOT_TRACK": "1",
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false",
        "MLFLOW_HTTP_REQUEST_TIMEOUT": str(s.registry_timeout_s),
        "MLFLOW_HTTP_REQUEST_MAX_RETRIES": str(s.registry_retries),
        "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
        "MLFLOW_HTTP_REQUEST_BACKOFF_JITTER": "0.5",
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "120",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "YOLO_CONFIG_DIR": str(s.ultralytics_dir()),
        "YOLO_VERBOSE": "false",
    }
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    # never left to a caller's environment: ultralytics must not download or pip-install at run time
    os.environ["YOLO_OFFLINE"] = "1"
    os.environ["YOLO_AUTOINSTALL"] = "false"
    if log_level:  # Prefect sets its loggers' level from this when it starts logging (`dimflow -q`)
        os.environ["PREFECT_LOGGING_LEVEL"] = log_level
