"""contrail-kube-manager: Kubernetes objects → Tungsten Fabric configuration (spec §2–9)."""

from controlplane.kube_manager.manager import KubeManager

__all__ = ["KubeManager"]
