"""kube-manager's mapping, object by object (spec/k8s-to-tf.md §2–9).

Expected names and addresses come from the spec and the article, not from the code.
"""

from __future__ import annotations

import ipaddress
import json

import pytest
from k8s_objects import isolated, namespace, objects, pod, three_nodes

from controlplane.cluster import Cluster
from controlplane.config import ClusterConfig
from controlplane.errors import InputError
from controlplane.tf import model as tf

D = "default-domain"


def fq(*parts: str) -> tuple[str, ...]:
    return tuple(parts)


def vn_names(c: Cluster) -> set[str]:
    return {tf.fq_str(v.fq_name) for v in c.db.list(tf.VirtualNetwork)}


def policy_names(vn: tf.VirtualNetwork) -> set[str]:
    return {p[-1] for p in vn.network_policy_refs}


def pod_ip(c: Cluster, ns: str, name: str) -> str | None:
    return (c.store.get("Pod", ns, name) or {}).get("status", {}).get("podIP")


def snapshot(c: Cluster) -> set[tuple[str, tuple[str, ...]]]:
    return {(o.TYPE, o.fq_name) for o in c.db.all_objects()}


def pools_in_use(c: Cluster) -> dict[str, int]:
    return {tf.fq_str(i.fq_name): i.pool.in_use for i in c.db.list(tf.NetworkIpam)}


# --- §2 defaults -------------------------------------------------------------------------


def test_defaults_exist_before_any_namespace_event(cluster: Cluster) -> None:
    db = cluster.db
    for name in ("k8s-pod-ipam", "k8s-service-ipam", "k8s-ip-fabric-ipam"):
        assert db.get(tf.NetworkIpam, fq(D, "k8s-default", name)) is not None
    assert db.get(tf.NetworkIpam, fq(D, "k8s-default", "k8s-pod-ipam")).subnet == "10.32.0.0/12"
    assert db.get(tf.NetworkIpam, fq(D, "k8s-default", "k8s-service-ipam")).subnet == "10.96.0.0/12"
    assert db.get(tf.NetworkIpam, fq(D, "k8s-default", "k8s-ip-fabric-ipam")).subnet == "10.64.0.0/12"
    assert db.get(tf.Project, fq(D, "k8s-default")) is not None
    assert db.get(tf.Project, fq(D, "k8s-kube-system")) is not None
    pod_vn = db.get(tf.VirtualNetwork, fq(D, "k8s-default", "k8s-default-pod-network"))
    svc_vn = db.get(tf.VirtualNetwork, fq(D, "k8s-default", "k8s-default-service-network"))
    fabric = db.get(tf.VirtualNetwork, fq(D, "default-project", "ip-fabric"))
    assert pod_vn.network_ipam_refs == [fq(D, "k8s-default", "k8s-pod-ipam")]
    assert svc_vn.network_ipam_refs == [fq(D, "k8s-default", "k8s-service-ipam")]
    assert policy_names(fabric) == {"k8s-default-ip-fabric-np"}
    assert policy_names(pod_vn) == {"k8s-default-ip-fabric-np", "k8s-default-pod-service-np"}
    assert policy_names(svc_vn) == {"k8s-default-ip-fabric-np", "k8s-default-service-np", "k8s-default-pod-service-np"}
    for name in ("k8s-default-ip-fabric-np", "k8s-default-service-np", "k8s-default-pod-service-np"):
        policy = db.get(tf.NetworkPolicy, fq(D, "k8s-default", name))
        assert policy is not None
        assert all(r.action == "pass" and r.protocol == "any" and r.direction == "<>" for r in policy.rules)
    assert db.get(tf.SecurityGroup, fq(D, "k8s-default", "k8s-default-default-sg")).rules == [
        tf.SGRule("ingress"),
        tf.SGRule("egress"),
    ]
    assert {r.name for r in db.list(tf.VirtualRouter)} == {"worker01", "worker02"}


def test_every_routing_instance_belongs_to_its_vn(cluster: Cluster) -> None:
    for vn in cluster.db.list(tf.VirtualNetwork):
        assert cluster.db.get(tf.RoutingInstance, (*vn.fq_name, vn.fq_name[-1])) is not None


# --- §4 namespaces -------------------------------------------------------------------------


def test_article_namespaces_have_the_article_names(cluster: Cluster) -> None:
    cluster.apply_objects([namespace("ns-non-isolated"), isolated("ns-isolated")])
    names = vn_names(cluster)
    assert "default-domain:k8s-default:k8s-default-pod-network" in names
    assert "default-domain:k8s-default:k8s-default-service-network" in names
    assert "default-domain:k8s-ns-isolated:k8s-ns-isolated-pod-network" in names
    assert "default-domain:k8s-ns-isolated:k8s-ns-isolated-service-network" in names
    assert not any("ns-non-isolated" in n for n in names)
    assert cluster.db.get(tf.Project, fq(D, "k8s-ns-non-isolated")) is not None
    assert cluster.db.get(tf.SecurityGroup, fq(D, "k8s-ns-non-isolated", "k8s-ns-non-isolated-default-sg")) is not None
    iso_pod = cluster.db.get(tf.VirtualNetwork, fq(D, "k8s-ns-isolated", "k8s-ns-isolated-pod-network"))
    iso_svc = cluster.db.get(tf.VirtualNetwork, fq(D, "k8s-ns-isolated", "k8s-ns-isolated-service-network"))
    assert policy_names(iso_pod) == {"k8s-ns-isolated-pod-service-np", "k8s-default-ip-fabric-np", "k8s-default-service-np"}
    assert policy_names(iso_svc) == {"k8s-ns-isolated-pod-service-np", "k8s-default-ip-fabric-np"}
    # the isolated pod VN draws from the same pod-ipam pool as the default pod VN
    assert iso_pod.network_ipam_refs == [fq(D, "k8s-default", "k8s-pod-ipam")]


def test_isolation_annotation_is_case_insensitive(cluster: Cluster) -> None:
    cluster.apply_objects([namespace("loud", {"opencontrail.org/isolation": "TRUE"})])
    assert "default-domain:k8s-loud:k8s-loud-pod-network" in vn_names(cluster)


def test_service_isolation_disabled_opens_services_to_other_pod_vns(cluster: Cluster) -> None:
    cluster.apply_objects([isolated("other"), isolated("open", services_open=True)])
    svc_vn = cluster.db.get(tf.VirtualNetwork, fq(D, "k8s-open", "k8s-open-service-network"))
    assert "k8s-open-service-np" in policy_names(svc_vn)
    for vn in (fq(D, "k8s-default", "k8s-default-pod-network"), fq(D, "k8s-other", "k8s-other-pod-network")):
        assert "k8s-open-service-np" in policy_names(cluster.db.get(tf.VirtualNetwork, vn))
    # its pod VN is not opened to anyone
    own_pod_vn = cluster.db.get(tf.VirtualNetwork, fq(D, "k8s-open", "k8s-open-pod-network"))
    assert "k8s-open-service-np" not in policy_names(own_pod_vn)
    # a namespace isolated later gets the attachment too
    cluster.apply_objects([isolated("late")])
    late = cluster.db.get(tf.VirtualNetwork, fq(D, "k8s-late", "k8s-late-pod-network"))
    assert "k8s-open-service-np" in policy_names(late)


def test_single_tenant_maps_every_namespace_to_the_cluster_project() -> None:
    config = ClusterConfig.model_validate({"clusterProject": {"domain": "default-domain", "project": "kubernetes"}})
    c = Cluster(config)
    c.apply_objects([namespace("team-a"), isolated("team-b"), pod("p", "team-a")])
    projects = {p.fq_name for p in c.db.list(tf.Project)}
    assert fq(D, "kubernetes") in projects
    assert not any(p[1].startswith("k8s-team") for p in projects)
    vmi = c.db.list(tf.VirtualMachineInterface)[0]
    assert vmi.fq_name[:2] == fq(D, "kubernetes")
    assert c.db.get(tf.VirtualNetwork, fq(D, "kubernetes", "k8s-team-b-pod-network")) is not None
    assert c.db.get(tf.VirtualNetwork, fq(D, "kubernetes", "k8s-default-pod-network")) is not None


def test_namespace_delete_removes_everything_it_created(cluster: Cluster) -> None:
    before = snapshot(cluster)
    cluster.apply_objects([isolated("gone", services_open=True)])
    cluster.apply_objects(
        objects(
            """
            apiVersion: apps/v1
            kind: Deployment
            metadata: {name: web, namespace: gone}
            spec:
              replicas: 2
              selector: {matchLabels: {app: web}}
              template:
                metadata: {labels: {app: web}}
                spec: {containers: [{name: web, image: nginx, ports: [{containerPort: 80}]}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: web, namespace: gone}
            spec: {selector: {app: web}, ports: [{port: 80}]}
            """
        )
    )
    assert len(cluster.store.list("Pod", "gone")) == 2
    cluster.delete("namespace", None, "gone")
    assert snapshot(cluster) == before
    assert all(n == 0 for n in pools_in_use(cluster).values())
    assert cluster.store.list("Pod", "gone") == []


def test_protected_namespaces_cannot_be_deleted(cluster: Cluster) -> None:
    for name in ("default", "kube-system"):
        with pytest.raises(InputError, match="may not be deleted"):
            cluster.delete("ns", None, name)


def test_namespace_mode_change_moves_its_pods(cluster: Cluster) -> None:
    cluster.apply_objects([namespace("flip"), pod("p", "flip")])
    assert cluster.kube_manager.pods.records[("flip", "p")].vn[-1] == "k8s-default-pod-network"
    cluster.apply_objects([isolated("flip")])
    assert cluster.kube_manager.pods.records[("flip", "p")].vn[-1] == "k8s-flip-pod-network"
    cluster.apply_objects([namespace("flip")])
    assert cluster.kube_manager.pods.records[("flip", "p")].vn[-1] == "k8s-default-pod-network"
    assert "default-domain:k8s-flip:k8s-flip-pod-network" not in vn_names(cluster)


# --- §3 and §5 pods ----------------------------------------------------------------------


def test_three_busyboxes_get_addresses_from_the_top(cluster: Cluster) -> None:
    cluster.apply_objects([namespace("ns-non-isolated"), isolated("ns-isolated")])
    for ns in ("default", "ns-non-isolated", "ns-isolated"):
        cluster.apply_objects([pod("busybox")], namespace=ns)
    assert [pod_ip(cluster, ns, "busybox") for ns in ("default", "ns-non-isolated", "ns-isolated")] == [
        "10.47.255.252",
        "10.47.255.251",
        "10.47.255.250",
    ]
    cluster.delete("pod", "ns-non-isolated", "busybox")
    cluster.apply_objects([pod("another")])
    assert pod_ip(cluster, "default", "another") == "10.47.255.251"


def test_pod_objects_names_and_mac(cluster: Cluster) -> None:
    cluster.apply_objects([pod("busybox", labels={"app": "bb"})])
    obj = cluster.store.get("Pod", "default", "busybox")
    uid = obj["metadata"]["uid"]
    vm = cluster.db.get(tf.VirtualMachine, ("k8s__default__busybox",))
    assert vm is not None and vm.uuid == uid
    assert vm.virtual_router_refs == [("default-global-system-config", obj["spec"]["nodeName"])]
    (vmi,) = cluster.db.list(tf.VirtualMachineInterface)
    assert vmi.fq_name == (D, "k8s-default", f"busybox__{vmi.uuid}")
    assert vmi.virtual_machine_refs == [vm.fq_name]
    assert vmi.security_group_refs == [(D, "k8s-default", "k8s-default-default-sg")]
    hex_uuid = vmi.uuid.replace("-", "")
    assert vmi.mac_address == "02:" + ":".join(hex_uuid[i : i + 2] for i in range(0, 10, 2))
    tags = {t[0] for t in vmi.tag_refs}
    assert {"app=bb", "namespace=default", "kubernetes.io/metadata.name=default"} <= tags
    (iip,) = [i for i in cluster.db.list(tf.InstanceIp) if i.virtual_machine_interface_refs == [vmi.fq_name]]
    assert iip.instance_ip_address == obj["status"]["podIP"] == "10.47.255.252"


def test_pod_vn_choice_order(cluster: Cluster) -> None:
    blue = {"domain": "default-domain", "project": "k8s-default", "name": "blue"}
    red = {"domain": "default-domain", "project": "k8s-default", "name": "red"}
    cluster.apply_objects(
        objects(
            """
            apiVersion: vrsim.tf/v1
            kind: VirtualNetwork
            metadata: {name: blue, project: k8s-default}
            spec: {ipam: k8s-pod-ipam}
            ---
            apiVersion: vrsim.tf/v1
            kind: VirtualNetwork
            metadata: {name: red, project: k8s-default}
            spec: {subnet: 10.10.0.0/24}
            """
        )
    )
    cluster.apply_objects(
        [
            namespace("custom", {"opencontrail.org/network": json.dumps(blue)}),
            isolated("iso"),
            pod("by-namespace", "custom"),
            {**pod("by-pod", "custom"), "metadata": {"name": "by-pod", "namespace": "custom", "annotations": {"opencontrail.org/network": json.dumps(red)}}},
            pod("isolated-pod", "iso"),
            pod("plain", "default"),
        ]
    )
    records = cluster.kube_manager.pods.records
    assert records[("custom", "by-pod")].vn == fq(D, "k8s-default", "red")
    assert records[("custom", "by-namespace")].vn == fq(D, "k8s-default", "blue")
    assert records[("iso", "isolated-pod")].vn == fq(D, "k8s-iso", "k8s-iso-pod-network")
    assert records[("default", "plain")].vn == fq(D, "k8s-default", "k8s-default-pod-network")
    assert pod_ip(cluster, "custom", "by-pod") == "10.10.0.252"  # red's own /24, top-down


def test_missing_network_is_an_event_then_realised_when_declared(cluster: Cluster) -> None:
    ref = json.dumps({"domain": "default-domain", "project": "k8s-default", "name": "later"})
    cluster.apply_objects([{**pod("waiting"), "metadata": {"name": "waiting", "annotations": {"opencontrail.org/network": ref}}}])
    assert pod_ip(cluster, "default", "waiting") is None
    assert cluster.store.get("Pod", "default", "waiting")["status"]["phase"] == "Pending"
    reasons = [(e.name, e.reason) for e in cluster.store.events]
    assert ("waiting", "NetworkNotFound") in reasons
    cluster.apply_objects(objects("apiVersion: vrsim.tf/v1\nkind: VirtualNetwork\nmetadata: {name: later, project: k8s-default}\nspec: {subnet: 10.20.0.0/24}\n"))
    assert pod_ip(cluster, "default", "waiting") == "10.20.0.252"


def test_pool_exhaustion_is_an_event_and_recovers() -> None:
    c = Cluster(ClusterConfig.model_validate({"podSubnet": "10.32.0.0/29"}))
    c.apply_objects([pod(f"p{i}") for i in range(5)])
    ips = [pod_ip(c, "default", f"p{i}") for i in range(5)]
    assert ips[:4] == ["10.32.0.4", "10.32.0.3", "10.32.0.2", "10.32.0.1"]
    assert ips[4] is None
    events = [e for e in c.store.events if e.name == "p4" and e.reason == "AddressPoolExhausted"]
    assert events and "exhausted" in events[0].message
    cond = c.store.get("Pod", "default", "p4")["status"]["conditions"]
    assert any(x["type"] == "TFRealized" and x["status"] == "False" for x in cond)
    c.delete("pod", "default", "p1")
    assert pod_ip(c, "default", "p4") == "10.32.0.3"


def test_host_network_pods_get_no_tf_objects(cluster: Cluster) -> None:
    cluster.apply_objects([pod("kube-proxy", "kube-system", hostNetwork=True, nodeName="worker02")])
    assert cluster.db.list(tf.VirtualMachineInterface) == []
    assert pod_ip(cluster, "kube-system", "kube-proxy") == "172.27.10.75"


def test_relabelling_a_pod_updates_its_tags(cluster: Cluster) -> None:
    cluster.apply_objects([pod("p", labels={"v": "1"})])
    cluster.apply_objects([pod("p", labels={"v": "2"})])
    (vmi,) = cluster.db.list(tf.VirtualMachineInterface)
    assert ("v=2",) in vmi.tag_refs and ("v=1",) not in vmi.tag_refs
    assert cluster.db.get(tf.Tag, ("v=1",)) is None  # no leaked tag
    assert pod_ip(cluster, "default", "p") == "10.47.255.252"  # same pod, same address


# --- §6 services ------------------------------------------------------------------------

NGINX = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: nginx}
spec:
  replicas: 2
  selector: {matchLabels: {app: nginx}}
  template:
    metadata: {labels: {app: nginx}}
    spec:
      containers:
      - name: nginx
        image: nginx
        ports: [{containerPort: 8080, name: http}]
---
apiVersion: v1
kind: Service
metadata: {name: nginx}
spec:
  selector: {app: nginx}
  ports: [{name: web, port: 80, targetPort: http}]
"""


def nginx_pods(c: Cluster) -> list[dict]:
    return [p for p in c.store.list("Pod", "default") if p["metadata"]["name"].startswith("nginx-")]


def test_clusterip_service_is_a_native_lb_with_vip_fip_on_members(cluster: Cluster) -> None:
    cluster.apply_objects(objects(NGINX))
    svc = cluster.store.get("Service", "default", "nginx")
    cip = svc["spec"]["clusterIP"]
    assert ipaddress.ip_address(cip) in ipaddress.ip_network("10.96.0.0/12")
    (lb,) = cluster.db.list(tf.Loadbalancer)
    assert lb.fq_name == (D, "k8s-default", f"nginx__{svc['metadata']['uid']}")
    assert lb.loadbalancer_provider == "native" and lb.vip_address == cip
    (vip_vmi,) = [cluster.db.get(tf.VirtualMachineInterface, r) for r in lb.virtual_machine_interface_refs]
    assert vip_vmi.virtual_network_refs == [(D, "k8s-default", "k8s-default-service-network")]
    (listener,) = cluster.db.list(tf.LoadbalancerListener)
    assert (listener.protocol, listener.protocol_port) == ("TCP", 80)
    members = cluster.db.list(tf.LoadbalancerMember)
    assert sorted(m.address for m in members) == sorted(p["status"]["podIP"] for p in nginx_pods(cluster))
    assert {m.protocol_port for m in members} == {8080}  # named targetPort resolved
    (fip,) = [f for f in cluster.db.list(tf.FloatingIp) if f.role == "cluster-ip"]
    assert fip.floating_ip_address == cip
    member_vmis = {cluster.kube_manager.pods.records[("default", p["metadata"]["name"])].vmi for p in nginx_pods(cluster)}
    assert set(fip.virtual_machine_interface_refs) == member_vmis and len(member_vmis) == 2
    assert fip.port_mappings == (tf.PortMapping("tcp", 80, 8080),)
    assert fip.fq_name[:4] == (D, "k8s-default", "k8s-default-service-network", "svc-fip-pool-k8s-default-service-network")


def test_named_target_port_resolved_per_pod(cluster: Cluster) -> None:
    cluster.apply_objects(
        [
            {**pod("a", labels={"app": "x"}), "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 8080, "name": "web"}]}]}},
            {**pod("b", labels={"app": "x"}), "spec": {"containers": [{"name": "c", "image": "i", "ports": [{"containerPort": 9090, "name": "web"}]}]}},
            {**pod("c", labels={"app": "x"}), "spec": {"containers": [{"name": "c", "image": "i"}]}},
            {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "x"}, "spec": {"selector": {"app": "x"}, "ports": [{"port": 80, "targetPort": "web"}]}},
        ]
    )
    (fip,) = [f for f in cluster.db.list(tf.FloatingIp) if f.role == "cluster-ip"]
    by_pod = {vmi[-1].split("__")[0]: maps for vmi, maps in fip.port_mappings_by_vmi.items()}
    assert by_pod == {"a": (tf.PortMapping("tcp", 80, 8080),), "b": (tf.PortMapping("tcp", 80, 9090),)}
    ep = cluster.store.get("Endpoints", "default", "x")
    assert sorted(p["port"] for s in ep["subsets"] for p in s["ports"]) == [8080, 9090]


def test_scaling_and_deleting_members_updates_the_fip(cluster: Cluster) -> None:
    cluster.apply_objects(objects(NGINX))
    scaled = objects(NGINX)
    scaled[0]["spec"]["replicas"] = 3
    cluster.apply_objects(scaled)
    (fip,) = [f for f in cluster.db.list(tf.FloatingIp) if f.role == "cluster-ip"]
    assert len(fip.virtual_machine_interface_refs) == 3
    scaled[0]["spec"]["replicas"] = 0
    cluster.apply_objects(scaled)
    assert fip.virtual_machine_interface_refs == []  # the last member went: no ECMP route
    assert cluster.db.list(tf.LoadbalancerMember) == []


def test_service_delete_leaves_nothing(cluster: Cluster) -> None:
    before = snapshot(cluster)
    cluster.apply_objects(objects(NGINX))
    cip = cluster.store.get("Service", "default", "nginx")["spec"]["clusterIP"]
    cluster.delete("svc", "default", "nginx")
    cluster.delete("deploy", "default", "nginx")
    assert snapshot(cluster) == before
    assert all(n == 0 for n in pools_in_use(cluster).values())
    # the ClusterIP can be asked for again
    again = objects(NGINX)[1]
    again["spec"]["clusterIP"] = cip
    cluster.apply_objects([again])


def test_isolated_namespace_service_vip_lives_in_its_service_vn(cluster: Cluster) -> None:
    cluster.apply_objects([isolated("iso")])
    cluster.apply_objects(objects(NGINX), namespace="iso")
    (lb,) = cluster.db.list(tf.Loadbalancer)
    vip_vmi = cluster.db.get(tf.VirtualMachineInterface, lb.virtual_machine_interface_refs[0])
    assert vip_vmi.virtual_network_refs == [(D, "k8s-iso", "k8s-iso-service-network")]


def test_headless_and_external_name_get_no_lb(cluster: Cluster) -> None:
    cluster.apply_objects(
        objects(
            """
            apiVersion: v1
            kind: Service
            metadata: {name: headless}
            spec: {clusterIP: None, selector: {app: x}, ports: [{port: 80}]}
            ---
            apiVersion: v1
            kind: Service
            metadata: {name: ext}
            spec: {type: ExternalName, externalName: example.com}
            """
        )
    )
    assert cluster.db.list(tf.Loadbalancer) == []


def test_nodeport_service_gets_ports_but_no_extra_tf_objects(cluster: Cluster) -> None:
    docs = objects(NGINX)
    docs[1]["spec"]["type"] = "NodePort"
    docs[1]["spec"]["ports"][0]["nodePort"] = 30080
    cluster.apply_objects(docs)
    svc = cluster.store.get("Service", "default", "nginx")
    assert svc["spec"]["ports"][0]["nodePort"] == 30080
    assert len(cluster.db.list(tf.Loadbalancer)) == 1  # the ClusterIP LB only
    assert not [f for f in cluster.db.list(tf.FloatingIp) if f.role != "cluster-ip"]


PUBLIC_POOL = """
apiVersion: vrsim.tf/v1
kind: FloatingIpPool
metadata: {name: public-pool, project: k8s-default}
spec: {network: public, subnet: 203.0.113.0/24}
"""

WEB_LB = """
apiVersion: v1
kind: Service
metadata: {name: service-web-lb}
spec:
  type: LoadBalancer
  selector: {app: webserver}
  ports: [{port: 8888, targetPort: 80}]
"""

WEB_PODS = [pod(f"web-{i}", labels={"app": "webserver"}) for i in range(2)]


def test_loadbalancer_without_pool_keeps_clusterip_and_says_why(cluster: Cluster) -> None:
    cluster.apply_objects([*WEB_PODS, *objects(WEB_LB)])
    assert [e for e in cluster.store.events if e.reason == "NoFloatingIpPool"]
    fips = cluster.db.list(tf.FloatingIp)
    assert [f.role for f in fips] == ["cluster-ip"] and len(fips[0].virtual_machine_interface_refs) == 2


def test_loadbalancer_takes_the_cluster_pool_and_writes_back() -> None:
    c = Cluster(ClusterConfig.model_validate({"publicFipPool": {"name": "public-pool", "network": "public", "subnet": "203.0.113.0/24"}}))
    c.apply_objects([*WEB_PODS, *objects(WEB_LB)])
    svc = c.store.get("Service", "default", "service-web-lb")
    (ext,) = [f for f in c.db.list(tf.FloatingIp) if f.role == "external-ip"]
    assert ext.floating_ip_address == "203.0.113.252"  # the pool's VN allocates top-down too
    assert svc["status"]["loadBalancer"]["ingress"] == [{"ip": "203.0.113.252"}]
    assert "203.0.113.252" in svc["spec"]["externalIPs"]
    assert len(ext.virtual_machine_interface_refs) == 2
    assert ext.port_mappings == (tf.PortMapping("tcp", 8888, 80),)


def test_fip_pool_order_service_then_namespace_then_cluster() -> None:
    c = Cluster(ClusterConfig.model_validate({"publicFipPool": {"name": "cluster-pool", "network": "pub-c", "subnet": "198.51.100.0/24"}}))
    c.apply_objects(
        objects(
            """
            apiVersion: vrsim.tf/v1
            kind: FloatingIpPool
            metadata: {name: ns-pool, project: k8s-default}
            spec: {network: pub-n, subnet: 192.0.2.0/24}
            ---
            apiVersion: vrsim.tf/v1
            kind: FloatingIpPool
            metadata: {name: svc-pool, project: k8s-default}
            spec: {network: pub-s, subnet: 203.0.113.0/24}
            """
        )
    )
    ns_pool = json.dumps({"domain": "default-domain", "project": "k8s-default", "network": "pub-n", "name": "ns-pool"})
    svc_pool = json.dumps({"domain": "default-domain", "project": "k8s-default", "network": "pub-s", "name": "svc-pool"})
    c.apply_objects([namespace("with-pool", {"opencontrail.org/fip-pool": ns_pool}), namespace("plain")])
    for ns, notes in (("with-pool", {"opencontrail.org/fip-pool": svc_pool}), ("with-pool", None), ("plain", None)):
        svc = objects(WEB_LB)[0]
        svc["metadata"]["namespace"] = ns
        svc["metadata"]["name"] = f"lb-{'annotated' if notes else 'bare'}"
        if notes:
            svc["metadata"]["annotations"] = notes
        c.apply_objects([svc])
    got = {
        (s["metadata"]["namespace"], s["metadata"]["name"]): s["status"]["loadBalancer"]["ingress"][0]["ip"]
        for s in c.store.list("Service")
    }
    assert got[("with-pool", "lb-annotated")].startswith("203.0.113.")
    assert got[("with-pool", "lb-bare")].startswith("192.0.2.")
    assert got[("plain", "lb-bare")].startswith("198.51.100.")


def test_requested_load_balancer_ip_and_external_ips() -> None:
    c = Cluster(ClusterConfig.model_validate({"publicFipPool": {"name": "p", "network": "public", "subnet": "203.0.113.0/24"}}))
    lb = objects(WEB_LB)[0]
    lb["spec"]["loadBalancerIP"] = "203.0.113.10"
    ext = objects(NGINX)[1]
    ext["spec"]["externalIPs"] = ["203.0.113.20", "203.0.113.21"]
    c.apply_objects([*WEB_PODS, lb, ext])
    addresses = sorted(f.floating_ip_address for f in c.db.list(tf.FloatingIp) if f.role == "external-ip")
    assert addresses == ["203.0.113.10", "203.0.113.20", "203.0.113.21"]


def test_session_affinity_is_reported_as_ignored(cluster: Cluster) -> None:
    docs = objects(NGINX)
    docs[1]["spec"]["sessionAffinity"] = "ClientIP"
    cluster.apply_objects(docs)
    assert [e for e in cluster.store.events if e.reason == "SessionAffinityIgnored"]


def test_sctp_listener_is_udp(cluster: Cluster) -> None:
    docs = objects(NGINX)
    docs[1]["spec"]["ports"][0]["protocol"] = "SCTP"
    cluster.apply_objects(docs)
    (listener,) = cluster.db.list(tf.LoadbalancerListener)
    assert listener.protocol == "UDP"


# --- §7 ingress -------------------------------------------------------------------------

INGRESS = """
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata: {name: web}
spec:
  defaultBackend: {service: {name: nginx, port: {number: 80}}}
  rules:
  - host: www.example.com
    http:
      paths:
      - {path: /app, pathType: Prefix, backend: {service: {name: nginx, port: {name: web}}}}
"""


def test_ingress_is_an_haproxy_lb_whose_members_are_clusterips(cluster: Cluster) -> None:
    cluster.apply_objects([*objects(NGINX), *objects(INGRESS)])
    cip = cluster.store.get("Service", "default", "nginx")["spec"]["clusterIP"]
    (lb,) = [l for l in cluster.db.list(tf.Loadbalancer) if l.loadbalancer_provider == "opencontrail"]
    assert lb.vip_address.startswith("10.47.")  # from the namespace's pod VN pool
    listeners = [l for l in cluster.db.list(tf.LoadbalancerListener) if l.loadbalancer_refs == [lb.fq_name]]
    assert [(l.protocol, l.protocol_port) for l in listeners] == [("HTTP", 80)]
    pools = [p for p in cluster.db.list(tf.LoadbalancerPool) if p.loadbalancer_listener_refs == [listeners[0].fq_name]]
    assert sorted((p.host or "", p.path or "") for p in pools) == [("", ""), ("www.example.com", "/app")]
    members = [m for m in cluster.db.list(tf.LoadbalancerMember) if m.fq_name[:-1] in {p.fq_name for p in pools}]
    assert {(m.address, m.protocol_port) for m in members} == {(cip, 80)}
    instances = [cluster.db.get(tf.VirtualMachineInterface, r) for r in lb.virtual_machine_interface_refs]
    assert len(instances) == 2 and instances[0].node != instances[1].node
    ing = cluster.store.get("Ingress", "default", "web")
    assert ing["status"]["loadBalancer"]["ingress"] == [{"ip": lb.vip_address}]
    before_delete = {l.fq_name for l in cluster.db.list(tf.Loadbalancer)}
    cluster.delete("ing", "default", "web")
    assert {l.fq_name for l in cluster.db.list(tf.Loadbalancer)} == before_delete - {lb.fq_name}
    assert not [v for v in cluster.db.list(tf.VirtualMachineInterface) if v.device_owner == "HAPROXY"]


def test_ingress_of_another_class_is_left_alone(cluster: Cluster) -> None:
    docs = objects(INGRESS)
    docs[0]["spec"]["ingressClassName"] = "nginx"
    cluster.apply_objects([*objects(NGINX), *docs])
    assert [l.loadbalancer_provider for l in cluster.db.list(tf.Loadbalancer)] == ["native"]


# --- §8 NetworkPolicy --------------------------------------------------------------------

DENY_DB = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: db-allow-web}
spec:
  podSelector: {matchLabels: {app: db}}
  ingress:
  - from: [{podSelector: {matchLabels: {app: web}}}]
    ports: [{port: 5432}]
"""


def test_network_policy_is_a_security_group_on_selected_pods(cluster: Cluster) -> None:
    cluster.apply_objects([pod("db", labels={"app": "db"}), pod("web", labels={"app": "web"}), *objects(DENY_DB)])
    sg_fq = (D, "k8s-default", "k8s-default-db-allow-web")
    sg = cluster.db.get(tf.SecurityGroup, sg_fq)
    assert sg is not None and sg.network_policy == "default/db-allow-web"
    assert [(r.direction, r.protocol, r.ports) for r in sg.rules] == [("ingress", "tcp", (5432, 5432))]
    records = cluster.kube_manager.pods.records
    db_vmi = cluster.db.get(tf.VirtualMachineInterface, records[("default", "db")].vmi)
    web_vmi = cluster.db.get(tf.VirtualMachineInterface, records[("default", "web")].vmi)
    assert sg_fq in db_vmi.security_group_refs and sg_fq not in web_vmi.security_group_refs
    # a pod relabelled into the selection gets the group; the delete detaches everywhere
    cluster.apply_objects([pod("web", labels={"app": "db"})])
    assert sg_fq in cluster.db.get(tf.VirtualMachineInterface, records[("default", "web")].vmi).security_group_refs
    cluster.delete("netpol", "default", "db-allow-web")
    assert cluster.db.get(tf.SecurityGroup, sg_fq) is None
    assert all(sg_fq not in v.security_group_refs for v in cluster.db.list(tf.VirtualMachineInterface))


# --- §9 declared TF objects ---------------------------------------------------------------

JOIN = """
apiVersion: vrsim.tf/v1
kind: NetworkPolicy
metadata: {name: join-a-b, project: k8s-default}
spec:
  rules:
  - {action: pass, protocol: any, direction: "<>", src: k8s-a:k8s-a-pod-network, dst: k8s-b:k8s-b-pod-network}
  attachTo: [k8s-a:k8s-a-pod-network, k8s-b:k8s-b-pod-network]
"""


def test_declared_policy_attaches_to_both_vns_and_detaches_on_delete(cluster: Cluster) -> None:
    cluster.apply_objects([isolated("a"), isolated("b"), *objects(JOIN)])
    for ns in ("a", "b"):
        vn = cluster.db.get(tf.VirtualNetwork, (D, f"k8s-{ns}", f"k8s-{ns}-pod-network"))
        assert "join-a-b" in policy_names(vn)
    (rule,) = cluster.db.get(tf.NetworkPolicy, (D, "k8s-default", "join-a-b")).rules
    assert rule.src == (D, "k8s-a", "k8s-a-pod-network") and rule.dst == (D, "k8s-b", "k8s-b-pod-network")
    cluster.delete("NetworkPolicy.vrsim.tf", "k8s-default", "join-a-b")
    for ns in ("a", "b"):
        vn = cluster.db.get(tf.VirtualNetwork, (D, f"k8s-{ns}", f"k8s-{ns}-pod-network"))
        assert "join-a-b" not in policy_names(vn)
    assert cluster.db.get(tf.NetworkPolicy, (D, "k8s-default", "join-a-b")) is None


def test_deleting_a_vn_in_use_is_refused(cluster: Cluster) -> None:
    cluster.apply_objects(objects("apiVersion: vrsim.tf/v1\nkind: VirtualNetwork\nmetadata: {name: blue, project: k8s-default}\nspec: {subnet: 10.10.0.0/24}\n"))
    ref = json.dumps({"project": "k8s-default", "name": "blue"})
    cluster.apply_objects([{**pod("p"), "metadata": {"name": "p", "annotations": {"opencontrail.org/network": ref}}}])
    with pytest.raises(InputError, match="still used by"):
        cluster.delete("VirtualNetwork", "k8s-default", "blue")
    cluster.delete("pod", "default", "p")
    cluster.delete("VirtualNetwork", "k8s-default", "blue")
    assert cluster.db.get(tf.VirtualNetwork, (D, "k8s-default", "blue")) is None


# --- workloads, apply semantics --------------------------------------------------------


def test_apply_twice_is_an_update_and_changes_nothing(cluster: Cluster) -> None:
    cluster.apply_objects(objects(NGINX))
    before = snapshot(cluster)
    names = sorted(p["metadata"]["name"] for p in cluster.store.list("Pod"))
    cluster.apply_objects(objects(NGINX))
    assert snapshot(cluster) == before
    assert sorted(p["metadata"]["name"] for p in cluster.store.list("Pod")) == names


def test_deleting_a_member_pod_brings_a_replacement(cluster: Cluster) -> None:
    cluster.apply_objects(objects(NGINX))
    victim = nginx_pods(cluster)[0]["metadata"]["name"]
    cluster.delete("pod", "default", victim)
    pods = nginx_pods(cluster)
    assert len(pods) == 2 and victim not in {p["metadata"]["name"] for p in pods}
    (fip,) = [f for f in cluster.db.list(tf.FloatingIp) if f.role == "cluster-ip"]
    assert len(fip.virtual_machine_interface_refs) == 2


def test_clusterip_honoured_and_node_binding(cluster: Cluster) -> None:
    docs = objects(NGINX)
    docs[1]["spec"]["clusterIP"] = "10.97.137.130"
    cluster.apply_objects([*docs, pod("pinned", nodeName="worker02")])
    assert cluster.store.get("Service", "default", "nginx")["spec"]["clusterIP"] == "10.97.137.130"
    assert cluster.kube_manager.pods.records[("default", "pinned")].node == "worker02"


def test_three_node_spread_is_even() -> None:
    c = Cluster(three_nodes())
    c.apply_objects([pod(f"p{i}") for i in range(6)])
    nodes = sorted(p["spec"]["nodeName"] for p in c.store.list("Pod"))
    assert nodes == ["worker01", "worker01", "worker02", "worker02", "worker03", "worker03"]
