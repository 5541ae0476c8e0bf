"""Prefect Block classes (result storage, model registry, cache) live here."""
