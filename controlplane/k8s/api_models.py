"""The Kubernetes API's own models — the official client's — without the client around them.

``import kubernetes`` first runs the package's ``__init__``, which loads kubeconfig and
in-cluster configuration support (google-auth, requests, oauthlib …): about 180 ms and a
dozen packages vrsim never uses, since it reads manifests and talks to no cluster. The
models package needs none of it, so its two parent packages are registered as bare
packages (their ``__path__`` only) and the models alone are imported.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from pathlib import Path
from typing import Any


def api_models() -> Any:
    """``kubernetes.client.models``, imported without ``kubernetes/__init__``."""
    loaded = sys.modules.get("kubernetes.client.models")
    if loaded is not None:
        return loaded
    if "kubernetes" not in sys.modules:
        spec = importlib.util.find_spec("kubernetes")
        if spec is None or not spec.submodule_search_locations:
            raise ImportError("the kubernetes package (its API models) is not installed")
        root = Path(list(spec.submodule_search_locations)[0])
        for name, path in (("kubernetes", root), ("kubernetes.client", root / "client")):
            package = types.ModuleType(name)
            package.__path__ = [str(path)]
            sys.modules[name] = package
    return importlib.import_module("kubernetes.client.models")
