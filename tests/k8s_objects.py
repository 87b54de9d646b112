"""Builders of Kubernetes objects and cluster configurations for the tests."""

from __future__ import annotations

import textwrap
from typing import Any

import yaml

from controlplane.config import ClusterConfig


def objects(text: str) -> list[dict[str, Any]]:
    """Kubernetes objects from a YAML text (several documents allowed)."""
    return [d for d in yaml.safe_load_all(textwrap.dedent(text)) if d]


def pod(name: str, namespace: str | None = None, labels: dict[str, str] | None = None, **spec: Any) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if namespace:
        meta["namespace"] = namespace
    if labels:
        meta["labels"] = labels
    body = {"containers": [{"name": "c", "image": "busybox"}], **spec}
    return {"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": body}


def namespace(name: str, annotations: dict[str, str] | None = None, labels: dict[str, str] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if annotations:
        meta["annotations"] = dict(annotations)
    if labels:
        meta["labels"] = dict(labels)
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": meta}


def isolated(name: str, services_open: bool = False) -> dict[str, Any]:
    notes = {"opencontrail.org/isolation": "true"}
    if services_open:
        notes["opencontrail.org/isolation.service"] = "false"
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "annotations": notes}}


def three_nodes() -> ClusterConfig:
    return ClusterConfig.model_validate(
        {
            "nodes": [
                {"name": "worker01", "ip": "172.27.10.74"},
                {"name": "worker02", "ip": "172.27.10.75"},
                {"name": "worker03", "ip": "172.27.10.76"},
            ]
        }
    )
