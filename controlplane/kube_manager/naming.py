"""The names contrail-kube-manager gives to what it creates (spec/k8s-to-tf.md §2–8).

``<C>`` is the cluster name, ``<D>`` the domain. In multi-tenant mode namespace ``ns`` is
project ``<C>-ns``; in single-tenant mode every namespace (and the cluster-wide objects:
IPAMs, default VNs, default policies) lives in the configured cluster project.
"""

from __future__ import annotations

from dataclasses import dataclass

from controlplane.config import ClusterConfig
from controlplane.tf.model import FqName

ANNOTATION_ISOLATION = "opencontrail.org/isolation"
ANNOTATION_SERVICE_ISOLATION = "opencontrail.org/isolation.service"
ANNOTATION_NETWORK = "opencontrail.org/network"
ANNOTATION_FIP_POOL = "opencontrail.org/fip-pool"
GLOBAL_SYSTEM_CONFIG = "default-global-system-config"


@dataclass(frozen=True)
class Names:
    config: ClusterConfig

    @property
    def cluster(self) -> str:
        return self.config.name

    @property
    def domain(self) -> str:
        if self.config.clusterProject is not None:
            return self.config.clusterProject.domain
        return self.config.domain

    # --- projects ----------------------------------------------------------------------

    @property
    def infra_project(self) -> FqName:
        """Where the IPAMs, default VNs and default policies live."""
        if self.config.clusterProject is not None:
            return (self.config.clusterProject.domain, self.config.clusterProject.project)
        return (self.domain, f"{self.cluster}-default")

    def project(self, namespace: str) -> FqName:
        if self.config.clusterProject is not None:
            return self.infra_project
        return (self.domain, f"{self.cluster}-{namespace}")

    @property
    def fabric_project(self) -> FqName:
        return (self.domain, "default-project")

    # --- IPAMs and VNs ---------------------------------------------------------------
    def ipam(self, role: str) -> FqName:
        """``role`` is ``pod``, ``service`` or ``ip-fabric``."""
        return (*self.infra_project, f"{self.cluster}-{role}-ipam")

    @property
    def default_pod_vn(self) -> FqName:
        return (*self.infra_project, f"{self.cluster}-default-pod-network")

    @property
    def default_service_vn(self) -> FqName:
        return (*self.infra_project, f"{self.cluster}-default-service-network")

    @property
    def ip_fabric_vn(self) -> FqName:
        return (*self.fabric_project, "ip-fabric")

    def ns_pod_vn(self, namespace: str) -> FqName:
        return (*self.project(namespace), f"{self.cluster}-{namespace}-pod-network")

    def ns_service_vn(self, namespace: str) -> FqName:
        return (*self.project(namespace), f"{self.cluster}-{namespace}-service-network")

    # --- policies and security groups --------------------------------------------------
    @property
    def ip_fabric_policy(self) -> FqName:
        return (*self.infra_project, f"{self.cluster}-default-ip-fabric-np")

    @property
    def default_service_policy(self) -> FqName:
        return (*self.infra_project, f"{self.cluster}-default-service-np")

    def pod_service_policy(self, namespace: str) -> FqName:
        """``<C>-<ns>-pod-service-np`` (for ``default`` the cluster-wide one)."""
        if namespace == "default":
            return (*self.infra_project, f"{self.cluster}-default-pod-service-np")
        return (*self.project(namespace), f"{self.cluster}-{namespace}-pod-service-np")

    def shared_service_policy(self, namespace: str) -> FqName:
        """``<C>-<ns>-service-np``: opens an isolated namespace's services to every pod VN."""
        return (*self.project(namespace), f"{self.cluster}-{namespace}-service-np")

    def default_sg(self, namespace: str) -> FqName:
        return (*self.project(namespace), f"{self.cluster}-{namespace}-default-sg")

    def policy_sg(self, namespace: str, policy: str) -> FqName:
        return (*self.project(namespace), f"{self.cluster}-{namespace}-{policy}")

    # --- pods ----------------------------------------------------------------------
    def vm(self, namespace: str, pod: str) -> FqName:
        return (f"{self.cluster}__{namespace}__{pod}",)

    def vmi(self, namespace: str, name: str, uuid: str) -> FqName:
        return (*self.project(namespace), f"{name}__{uuid}")

    def virtual_router(self, node: str) -> FqName:
        return (GLOBAL_SYSTEM_CONFIG, node)

    def tag(self, key: str, value: str) -> FqName:
        return (f"{key}={value}",)

    # --- services ------------------------------------------------------------------
    def loadbalancer(self, namespace: str, name: str, uid: str) -> FqName:
        return (*self.project(namespace), f"{name}__{uid}")

    def service_fip_pool(self, vn: FqName) -> FqName:
        return (*vn, f"svc-fip-pool-{vn[-1]}")
