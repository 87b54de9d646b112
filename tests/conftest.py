"""Fixtures shared by the whole suite (the builders live in k8s_objects.py)."""

from __future__ import annotations

import pytest

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig


@pytest.fixture
def cluster() -> Cluster:
    """A fresh cluster with the default configuration (two workers)."""
    return Cluster(ClusterConfig())
