"""Prefect Block classes (result storage, model registry, cache) live here."""

from blocks.storage import LocalResultStorage, S3ResultStorage

__all__ = ["LocalResultStorage", "S3ResultStorage"]
