"""prefect.yaml stays in step with the flows: every entrypoint imports to a flow that accepts the
deployment's parameters (a drawing's path is given per run), on a work pool we define."""

from __future__ import annotations

import importlib
import inspect
from pathlib import Path

import pytest
import yaml
from prefect import Flow

ROOT = Path(__file__).resolve().parents[2]
DEPLOYMENTS = yaml.safe_load((ROOT / "prefect.yaml").read_text())["deployments"]


@pytest.mark.parametrize("dep", DEPLOYMENTS, ids=[d["name"] for d in DEPLOYMENTS])
def test_entrypoint_is_a_flow_taking_the_parameters(dep: dict) -> None:
    path, name = dep["entrypoint"].split(":")
    assert (ROOT / path).is_file()
    flow = getattr(importlib.import_module(path.removesuffix(".py").replace("/", ".")), name)
    assert isinstance(flow, Flow)
    accepted = inspect.signature(flow.fn).parameters
    assert set(dep.get("parameters", {})) <= set(accepted), f"{dep['name']}: unknown parameters"
    assert dep["work_pool"]["name"] in {"cpu", "gpu"}


def test_deployment_names_are_unique() -> None:
    names = [d["name"] for d in DEPLOYMENTS]
    assert len(names) == len(set(names))


def test_local_serve_builds_both_processing_deployments() -> None:
    from deployments.serve import deployments

    deps = deployments(limit=3)
    assert [d.name for d in deps] == ["process-drawing-local", "process-batch-local"]
    assert {d.flow_name for d in deps} == {"process-drawing", "process-batch"}


def test_gpu_pool_templates_request_nvidia_gpus() -> None:
    """The `gpu` pool's Kubernetes job asks for `gpu_count` NVIDIA GPUs (1 by default) and tolerates
    GPU taints; the Docker one exposes every GPU to the container (the host's runtime is nvidia)."""
    import json

    k8s = json.loads((ROOT / "infra" / "pools" / "gpu-kubernetes.json").read_text())
    pod = k8s["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert pod["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "{{ gpu_count }}"
    assert k8s["variables"]["properties"]["gpu_count"]["default"] == 1
    assert {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"} in pod["tolerations"]
    docker = json.loads((ROOT / "infra" / "pools" / "gpu-docker.json").read_text())
    assert docker["variables"]["properties"]["env"]["default"]["NVIDIA_VISIBLE_DEVICES"] == "all"
