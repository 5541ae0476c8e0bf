"""One settings object for dimflow: embedded defaults, overridden by DIMFLOW_* variables."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Where dimflow keeps its data and how it generates synthetic drawings."""

    model_config = SettingsConfigDict(env_prefix="DIMFLOW_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("data"), description="Datasets, local registry and results.")
    mlflow_tracking_uri: str | None = Field(
        default=None, description="MLflow tracking/registry URI; default: a sqlite file under data_dir/mlflow."
    )
    storage_url: str | None = Field(
        default=None, description="Where pages and results go: a folder or s3://bucket/prefix; default: data_dir/store."
    )
    pdf_dpi: float = Field(default=200.0, gt=0, le=1200, description="Resolution PDF pages are rendered at.")
    max_pixels: int = Field(default=120_000_000, ge=1, description="Largest page accepted, in pixels.")
    max_pages: int = Field(default=50, ge=1, description="Most pages accepted in one PDF.")
    max_bytes: int = Field(default=200 * 2**20, ge=1, description="Largest input file accepted, in bytes.")
    synth_seed: int = Field(default=1, description="Default seed of the synthetic generator.")
    synth_degrade_share: float = Field(default=0.3, ge=0.0, le=1.0, description="Share of degraded drawings.")


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def local_run_environment() -> None:
    """Embedded defaults for running flows on Prefect's local API (CLI, benchmarks): a startup
    timeout a cold 2-core machine meets, and no telemetry from an air-gapped plant. Variables
    already set win."""
    import os

    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "120")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
