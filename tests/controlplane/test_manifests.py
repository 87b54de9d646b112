"""Manifest loading, strict validation, YAML hazards, all-or-nothing apply, scenario parsing.

Every test writes its own files under ``tmp_path``. Errors are checked for what a user sees:
the file, the field path and the line of the offending key.
"""

from __future__ import annotations

import json
import textwrap
import time
from pathlib import Path

import pytest

from controlplane.cluster import Cluster
from controlplane.errors import InputError
from controlplane.k8s.manifests import load_paths, parse_manifest_text
from vrouter.lab.scenario import ApplyStep, CheckStep, DeleteStep, load_scenario


# --- helpers ------------------------------------------------------------------------------


def write(path: Path, text: str) -> Path:
    """Write dedented ``text`` to ``path`` (parents created) and return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line of ``path`` that contains ``needle``."""
    seen = 0
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if needle in line:
            seen += 1
            if seen == nth:
                return number
    raise AssertionError(f"{needle!r} not in {path}")


def apply_error(path: Path, cluster: Cluster | None = None) -> InputError:
    """Apply ``path`` and return the InputError it must raise."""
    cluster = cluster or Cluster()
    with pytest.raises(InputError) as info:
        cluster.apply_paths([str(path)])
    return info.value


def names(manifests: list) -> list[str]:
    return [m.obj["metadata"]["name"] for m in manifests]


POD = """
apiVersion: v1
kind: Pod
metadata:
  name: {name}
spec:
  containers:
  - name: c
    image: busybox
"""


# --- 1. loading ---------------------------------------------------------------------------


def test_single_file(tmp_path: Path) -> None:
    path = write(tmp_path / "pod.yaml", POD.format(name="web"))
    manifests = load_paths([path])
    assert [(m.kind, m.obj["metadata"]["name"]) for m in manifests] == [("Pod", "web")]
    assert manifests[0].source.file == str(path)
    assert manifests[0].source.line == 1
    cluster = Cluster()
    assert cluster.apply_paths([str(path)]) == []
    pod = cluster.store.get("Pod", "default", "web")
    assert pod is not None and pod["status"]["podIP"] == "10.47.255.252"


def test_directory_is_recursive_in_name_order_and_picks_only_manifest_suffixes(tmp_path: Path) -> None:
    root = tmp_path / "app"
    write(root / "b.yaml", POD.format(name="b"))
    write(root / "a.yml", POD.format(name="a"))
    write(root / "c.json", json.dumps({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "c"}, "spec": {"containers": [{"name": "c"}]}}))
    write(root / "sub" / "d.yaml", POD.format(name="d"))
    write(root / "sub" / "deeper" / "e.yaml", POD.format(name="e"))
    # Not manifests: must be skipped even though they would not parse.
    write(root / "README.md", "# not: [a manifest\n")
    write(root / "notes.txt", ": : :\n")
    write(root / "pod.yaml.bak", POD.format(name="backup"))
    write(root / "sub" / "script.sh", "echo {\n")
    assert names(load_paths([root])) == ["a", "b", "c", "d", "e"]


def test_directory_order_interleaves_subdirectories_like_kubectl(tmp_path: Path) -> None:
    """kubectl apply -R walks names in lexical order, a subdirectory where its name sorts."""
    root = tmp_path / "app"
    write(root / "01-first.yaml", POD.format(name="first"))
    write(root / "02-middle" / "pod.yaml", POD.format(name="middle"))
    write(root / "03-last.yaml", POD.format(name="last"))
    assert names(load_paths([root])) == ["first", "middle", "last"]


def test_multi_document_yaml_with_empty_documents(tmp_path: Path) -> None:
    path = write(
        tmp_path / "multi.yaml",
        """
        ---
        ---
        apiVersion: v1
        kind: Namespace
        metadata:
          name: team-a
        ---
        # only a comment
        ---
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          namespace: team-a
        spec:
          containers:
          - {name: c, image: nginx}
        ---
        """,
    )
    manifests = load_paths([path])
    assert [(m.kind, m.obj["metadata"]["name"]) for m in manifests] == [("Namespace", "team-a"), ("Pod", "web")]
    assert manifests[1].source.line == line_of(path, "kind: Pod") - 1
    cluster = Cluster()
    assert cluster.apply_paths([str(path)]) == []
    assert cluster.store.get("Pod", "team-a", "web")["status"]["podIP"]


def test_json_file_single_object_and_list(tmp_path: Path) -> None:
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "j1"}, "spec": {"containers": [{"name": "c", "image": "x"}]}}
    write(tmp_path / "one.json", json.dumps(pod, indent=2))
    listing = {"apiVersion": "v1", "kind": "List", "items": [{**pod, "metadata": {"name": "j2"}}]}
    write(tmp_path / "two.json", json.dumps(listing))
    cluster = Cluster()
    cluster.apply_paths([str(tmp_path)])
    assert cluster.store.get("Pod", "default", "j1") is not None
    assert cluster.store.get("Pod", "default", "j2") is not None


def test_invalid_json_gives_line(tmp_path: Path) -> None:
    path = tmp_path / "bad.json"
    path.write_text('{\n  "apiVersion": "v1",\n  "kind": "Pod",\n  "metadata": {"name": "x",}\n}\n', encoding="utf-8")
    err = apply_error(path)
    assert err.file == str(path)
    assert err.line == 4
    assert "JSON" in err.message


def test_kind_list_and_typed_lists(tmp_path: Path) -> None:
    path = write(
        tmp_path / "lists.yaml",
        """
        apiVersion: v1
        kind: List
        items:
        - apiVersion: v1
          kind: Namespace
          metadata: {name: from-list}
        - apiVersion: v1
          kind: Pod
          metadata: {name: p0, namespace: from-list}
          spec:
            containers: [{name: c, image: x}]
        ---
        apiVersion: v1
        kind: NamespaceList
        items:
        - metadata: {name: typed-ns}
        ---
        apiVersion: v1
        kind: PodList
        items:
        - metadata: {name: p1, namespace: typed-ns}
          spec:
            containers: [{name: c, image: x}]
        - metadata: {name: p2, namespace: typed-ns}
          spec:
            containers: [{name: c, image: x}]
        """,
    )
    manifests = load_paths([path])
    assert [(m.kind, m.obj["apiVersion"], m.obj["metadata"]["name"]) for m in manifests] == [
        ("Namespace", "v1", "from-list"),
        ("Pod", "v1", "p0"),
        ("Namespace", "v1", "typed-ns"),
        ("Pod", "v1", "p1"),
        ("Pod", "v1", "p2"),
    ]
    cluster = Cluster()
    assert cluster.apply_paths([str(path)]) == []
    assert cluster.store.get("Namespace", "", "typed-ns") is not None
    assert {p["metadata"]["name"] for p in cluster.store.list("Pod", "typed-ns")} == {"p1", "p2"}
    assert cluster.store.get("Pod", "from-list", "p0") is not None


def test_error_inside_a_typed_list_points_at_the_item_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pods.yaml",
        """
        apiVersion: v1
        kind: PodList
        items:
        - metadata: {name: ok}
          spec:
            containers: [{name: c, image: x}]
        - metadata: {name: bad}
          spec:
            containerz: [{name: c, image: x}]
        """,
    )
    err = apply_error(path)
    assert err.file == str(path)
    assert err.path == "spec.containerz"
    assert err.line == line_of(path, "containerz")
    assert "did you mean 'containers'" in err.message


def test_inline_objects_via_apply_objects() -> None:
    cluster = Cluster()
    notes = cluster.apply_objects(
        [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "inline-ns"}},
            {
                "apiVersion": "v1",
                "kind": "List",
                "items": [
                    {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "inline-ns"},
                     "spec": {"containers": [{"name": "c", "image": "x"}]}},
                ],
            },
        ]
    )
    assert notes == []
    assert cluster.store.get("Namespace", "", "inline-ns") is not None
    assert cluster.store.get("Pod", "inline-ns", "p")["status"]["podIP"]


def test_inline_object_error_names_the_file_and_path() -> None:
    cluster = Cluster()
    with pytest.raises(InputError) as info:
        cluster.apply_objects(
            [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
              "spec": {"ports": [{"port": 80, "protocool": "TCP"}]}}],
            file="inline.yaml",
        )
    assert info.value.file == "inline.yaml"
    assert info.value.path == "spec.ports[0].protocool"
    assert "'protocol'" in info.value.message


def test_unknown_kinds_are_accepted_ignored_and_noted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "mixed.yaml",
        """
        apiVersion: v1
        kind: ConfigMap
        metadata: {name: settings}
        data: {colour: blue, anything: goes}
        ---
        apiVersion: v1
        kind: Secret
        metadata: {name: token}
        type: Opaque
        stringData: {password: hunter2}
        ---
        apiVersion: v1
        kind: Pod
        metadata: {name: web}
        spec:
          containers: [{name: c, image: x}]
        """,
    )
    cluster = Cluster()
    notes = cluster.apply_paths([str(path)])
    assert len(notes) == 2
    assert "ConfigMap" in notes[0] and "settings" in notes[0] and "ignored" in notes[0]
    assert "Secret" in notes[1] and "token" in notes[1] and "ignored" in notes[1]
    assert str(path) in notes[0]
    assert cluster.store.get("Pod", "default", "web") is not None
    assert cluster.store.list("ConfigMap") == []


def test_pod_in_missing_namespace_is_not_found_as_with_kubectl(tmp_path: Path) -> None:
    path = write(tmp_path / "pod.yaml", POD.format(name="lonely").replace("  name: lonely", "  name: lonely\n  namespace: nowhere"))
    cluster = Cluster()
    with pytest.raises(InputError, match="namespace 'nowhere' not found") as caught:
        cluster.apply_paths([str(path)])
    assert caught.value.file == str(path) and caught.value.path == "metadata.namespace" and caught.value.line == 5  # the namespace: line
    assert cluster.store.get("Pod", "nowhere", "lonely") is None  # nothing of the apply was kept
    ns = write(tmp_path / "ns" / "00-ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata: {name: nowhere}\n")
    write(tmp_path / "ns" / "pod.yaml", path.read_text())
    assert cluster.apply_paths([str(ns.parent)]) == []  # the namespace comes in the same apply


def test_pod_in_missing_namespace_of_a_repository_creates_it_with_a_note(tmp_path: Path) -> None:
    """Plain manifests read as an analyzer reads a repository (strict_namespaces=False)."""
    path = write(tmp_path / "pod.yaml", POD.format(name="lonely").replace("  name: lonely", "  name: lonely\n  namespace: nowhere"))
    cluster = Cluster()
    assert cluster.store.get("Namespace", "", "nowhere") is None
    notes = cluster.apply(load_paths([str(path)]), strict_namespaces=False)
    assert len(notes) == 1 and "nowhere" in notes[0] and "created" in notes[0]
    assert cluster.store.get("Namespace", "", "nowhere") is not None
    assert cluster.store.get("Pod", "nowhere", "lonely") is not None


def test_apply_namespace_flag_and_conflict(tmp_path: Path) -> None:
    path = write(tmp_path / "pod.yaml", POD.format(name="p"))
    cluster = Cluster()
    cluster.apply_objects([{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}])
    assert cluster.apply_paths([str(path)], namespace="team") == []
    assert cluster.store.get("Pod", "team", "p") is not None
    assert cluster.store.get("Pod", "default", "p") is None
    other = write(tmp_path / "other.yaml", POD.format(name="q").replace("  name: q", "  name: q\n  namespace: elsewhere"))
    with pytest.raises(InputError) as info:
        cluster.apply_paths([str(other)], namespace="team")
    assert info.value.path == "metadata.namespace"
    assert info.value.line == line_of(other, "namespace: elsewhere")


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    err = apply_error(tmp_path / "nope.yaml")
    assert err.file == str(tmp_path / "nope.yaml")


def test_object_without_kind_or_api_version(tmp_path: Path) -> None:
    no_kind = write(tmp_path / "nokind.yaml", "apiVersion: v1\nmetadata: {name: x}\n")
    assert apply_error(no_kind).path == "kind"
    no_version = write(tmp_path / "noversion.yaml", "kind: Pod\nmetadata: {name: x}\n")
    assert apply_error(no_version).path == "apiVersion"
    scalar = write(tmp_path / "scalar.yaml", "just a string\n")
    assert apply_error(scalar).file == str(scalar)


# --- 2. strict validation -----------------------------------------------------------------

NETPOL_MISSPELT = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: allow-team
spec:
  podSelector: {}
  ingress:
  - from:
    - namespaceSelektor:
        matchLabels: {team: a}
"""


def test_misspelt_field_with_did_you_mean(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_MISSPELT)
    err = apply_error(path)
    assert err.file == str(path)
    assert err.path == "spec.ingress[0].from[0].namespaceSelektor"
    assert err.line == line_of(path, "namespaceSelektor") == 9
    assert "namespaceSelektor" in err.message
    assert "did you mean 'namespaceSelector'" in err.message


def test_misspelt_top_level_and_metadata_fields(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\n  lables: {a: b}\nspec:\n  ports: [{port: 80}]\n")
    err = apply_error(path)
    assert err.path == "metadata.lables"
    assert err.line == 5
    assert "did you mean 'labels'" in err.message
    path2 = write(tmp_path / "svc2.yaml", "apiVersion: v1\nkind: Service\nmetadata:\n  name: s\nspecs:\n  ports: [{port: 80}]\n")
    err2 = apply_error(path2)
    assert err2.path == "specs"
    assert err2.line == 5


SERVICE = """
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector:
    app: web
  ports:
  - port: {port}
    targetPort: 8080
    protocol: {protocol}
"""


def service(tmp_path: Path, port: str = "80", protocol: str = "TCP", name: str = "svc.yaml") -> Path:
    return write(tmp_path / name, SERVICE.replace("{port}", port).replace("{protocol}", protocol))


def test_wrong_type_quoted_port(tmp_path: Path) -> None:
    path = service(tmp_path, port='"80"')
    err = apply_error(path)
    assert err.file == str(path)
    assert err.path == "spec.ports[0].port"
    assert err.line == line_of(path, "- port:")
    assert "'80'" in err.message


@pytest.mark.parametrize("port", ["0", "70000", "-1"])
def test_port_out_of_range(tmp_path: Path, port: str) -> None:
    path = service(tmp_path, port=port)
    err = apply_error(path)
    assert err.path == "spec.ports[0].port"
    assert err.line == line_of(path, "- port:")
    assert port in err.message


def test_invalid_protocol(tmp_path: Path) -> None:
    path = service(tmp_path, protocol="ICMP")
    err = apply_error(path)
    assert err.path == "spec.ports[0].protocol"
    assert err.line == line_of(path, "protocol: ICMP")
    assert "ICMP" in err.message


def test_lower_case_protocol_is_refused(tmp_path: Path) -> None:
    """The API server's protocol values are case-sensitive."""
    err = apply_error(service(tmp_path, protocol="tcp"))
    assert err.path == "spec.ports[0].protocol"


NETPOL_PEER = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
spec:
  podSelector: {}
  ingress:
  - from:
    - ipBlock:
        cidr: {cidr}
        except:
        - {except}
"""


def test_invalid_ipblock_cidr(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_PEER.replace("{cidr}", "10.0.0.0/33").replace("{except}", "10.0.1.0/24"))
    err = apply_error(path)
    assert err.path == "spec.ingress[0].from[0].ipBlock.cidr"
    assert err.line == line_of(path, "cidr:")
    assert "10.0.0.0/33" in err.message


def test_ipblock_except_outside_its_cidr(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_PEER.replace("{cidr}", "10.0.0.0/16").replace("{except}", "192.168.0.0/24"))
    err = apply_error(path)
    assert err.path == "spec.ingress[0].from[0].ipBlock.except[0]"
    assert err.line == line_of(path, "192.168.0.0/24")
    assert "192.168.0.0/24" in err.message


def test_ipblock_valid_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_PEER.replace("{cidr}", "10.0.0.0/16").replace("{except}", "10.0.1.0/24"))
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    assert cluster.store.get("NetworkPolicy", "default", "np") is not None


NETPOL_EXPR = """
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
spec:
  podSelector:
    matchExpressions:
    - key: app
      operator: {operator}
      values: {values}
"""


def test_invalid_selector_operator(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_EXPR.replace("{operator}", "Equals").replace("{values}", "[web]"))
    err = apply_error(path)
    assert err.path == "spec.podSelector.matchExpressions[0].operator"
    assert err.line == line_of(path, "operator:")
    assert "Equals" in err.message


def test_in_operator_without_values(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_EXPR.replace("{operator}", "In").replace("{values}", "[]"))
    err = apply_error(path)
    assert err.path == "spec.podSelector.matchExpressions[0].values"
    assert err.line == line_of(path, "values:")
    # and with no values key at all: the expression's own line
    path2 = write(tmp_path / "np2.yaml", NETPOL_EXPR.replace("{operator}", "In").replace("      values: {values}\n", ""))
    err2 = apply_error(path2)
    assert err2.path == "spec.podSelector.matchExpressions[0].values"
    assert err2.line == line_of(path2, "- key: app")


def test_exists_operator_with_values(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", NETPOL_EXPR.replace("{operator}", "Exists").replace("{values}", "[web]"))
    err = apply_error(path)
    assert err.path == "spec.podSelector.matchExpressions[0].values"


def test_end_port_below_port(tmp_path: Path) -> None:
    path = write(
        tmp_path / "np.yaml",
        """
        apiVersion: networking.k8s.io/v1
        kind: NetworkPolicy
        metadata:
          name: np
        spec:
          podSelector: {}
          egress:
          - ports:
            - protocol: TCP
              port: 32000
              endPort: 31000
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.egress[0].ports[0].endPort"
    assert err.line == line_of(path, "endPort:")
    assert "31000" in err.message and "32000" in err.message


def test_bad_name_upper_case(tmp_path: Path) -> None:
    path = write(tmp_path / "pod.yaml", POD.format(name="WebServer"))
    err = apply_error(path)
    assert err.path == "metadata.name"
    assert err.line == line_of(path, "name: WebServer")
    assert "WebServer" in err.message


def test_bad_namespace_name(tmp_path: Path) -> None:
    path = write(tmp_path / "ns.yaml", "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: my.ns\n")
    err = apply_error(path)
    assert err.path == "metadata.name"
    assert err.line == 4


def test_bad_network_annotation_not_json(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pod.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: web
          annotations:
            opencontrail.org/network: "{domain: default-domain, project: k8s-default, name: blue}"
        spec:
          containers: [{name: c, image: x}]
        """,
    )
    err = apply_error(path)
    assert err.path == "metadata.annotations.opencontrail.org/network"
    assert err.line == line_of(path, "opencontrail.org/network")
    assert "JSON" in err.message


def test_bad_isolation_annotation(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ns.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: iso
          annotations:
            opencontrail.org/isolation: "yes"
        """,
    )
    err = apply_error(path)
    assert err.path == "metadata.annotations.opencontrail.org/isolation"
    assert err.line == 6


def test_unknown_api_version_for_known_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path / "deploy.yaml",
        """
        apiVersion: v1
        kind: Deployment
        metadata:
          name: web
        spec:
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              containers: [{name: c, image: x}]
        """,
    )
    err = apply_error(path)
    assert err.file == str(path)
    assert err.path == "apiVersion"
    assert err.line == 1
    assert "apps/v1" in err.message


def test_old_extensions_ingress(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ing.yaml",
        """
        # the article's era
        apiVersion: extensions/v1beta1
        kind: Ingress
        metadata:
          name: web
        spec:
          backend:
            serviceName: web
            servicePort: 80
        """,
    )
    err = apply_error(path)
    assert err.path == "apiVersion"
    assert err.line == 2
    assert "networking.k8s.io/v1" in err.message


def test_tf_object_unknown_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "vn.yaml",
        """
        apiVersion: vrsim.tf/v1
        kind: VirtualNetwork
        metadata: {name: blue, project: k8s-default}
        spec:
          ipam: k8s-pod-ipam
          subnett: 10.10.0.0/24
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.subnett"
    assert err.line == line_of(path, "subnett")
    assert "subnet" in err.message


def test_tf_object_misspelt_required_field(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pool.yaml",
        """
        apiVersion: vrsim.tf/v1
        kind: FloatingIpPool
        metadata: {name: public-pool, project: k8s-default}
        spec:
          netwrok: public
          subnet: 203.0.113.0/24
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.netwrok"
    assert err.line == line_of(path, "netwrok")
    assert "did you mean 'network'" in err.message


def test_tf_object_unknown_kind(tmp_path: Path) -> None:
    path = write(
        tmp_path / "router.yaml",
        """
        apiVersion: vrsim.tf/v1
        kind: LogicalRouter
        metadata: {name: r1, project: k8s-default}
        spec: {}
        """,
    )
    err = apply_error(path)
    assert err.path == "kind"
    assert err.line == 2
    assert "LogicalRouter" in err.message and "VirtualNetwork" in err.message


def test_tf_object_unknown_version(tmp_path: Path) -> None:
    """A ``vrsim.tf`` object in another version is ours and wrong, not an ignored foreign kind."""
    path = write(
        tmp_path / "vn.yaml",
        """
        apiVersion: vrsim.tf/v1beta1
        kind: VirtualNetwork
        metadata: {name: blue, project: k8s-default}
        spec: {subnet: 10.10.0.0/24}
        """,
    )
    err = apply_error(path)
    assert err.path == "apiVersion"
    assert err.line == 1
    assert "vrsim.tf/v1" in err.message


def test_foreign_group_with_a_kubernetes_kind_name_is_ignored(tmp_path: Path) -> None:
    """Calico's NetworkPolicy (projectcalico.org/v3) is another API: ignored with a note, like a CRD."""
    path = write(
        tmp_path / "calico.yaml",
        """
        apiVersion: projectcalico.org/v3
        kind: NetworkPolicy
        metadata: {name: calico-np, namespace: default}
        spec:
          selector: role == 'db'
          types: [Ingress]
        """,
    )
    cluster = Cluster()
    notes = cluster.apply_paths([str(path)])
    assert len(notes) == 1 and "NetworkPolicy calico-np ignored" in notes[0]
    assert cluster.store.get("NetworkPolicy", "default", "calico-np") is None


def test_kubernetes_group_with_wrong_version_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "np.yaml", "apiVersion: networking.k8s.io/v2\nkind: NetworkPolicy\nmetadata: {name: np}\nspec: {podSelector: {}}\n")
    err = apply_error(path)
    assert err.path == "apiVersion"
    assert "networking.k8s.io/v1" in err.message


def test_tf_objects_valid_are_applied(tmp_path: Path) -> None:
    path = write(
        tmp_path / "tf.yaml",
        """
        apiVersion: vrsim.tf/v1
        kind: VirtualNetwork
        metadata: {name: blue, project: k8s-default}
        spec: {subnet: 10.10.0.0/24}
        """,
    )
    cluster = Cluster()
    assert cluster.apply_paths([str(path)]) == []
    assert cluster.store.get("VirtualNetwork.vrsim.tf", "k8s-default", "blue") is not None


def test_container_without_name_or_image_is_tolerated(tmp_path: Path) -> None:
    path = write(
        tmp_path / "pod.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: bare
          labels: {app: bare}
        spec:
          containers:
          - ports:
            - containerPort: 80
        """,
    )
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    assert cluster.store.get("Pod", "default", "bare")["status"]["podIP"]


def test_other_required_fields_stay_required(tmp_path: Path) -> None:
    """The tolerance is only a container's name/image: a port's containerPort is still required."""
    path = write(
        tmp_path / "pod.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: p
        spec:
          containers:
          - name: c
            ports:
            - name: http
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.containers[0].ports[0].containerPort"
    assert err.line == line_of(path, "- name: http")


def test_numeric_resource_quantities_are_accepted(tmp_path: Path) -> None:
    """``cpu: 1`` / ``cpu: 0.5`` / ``memory: 128974848`` are valid quantities for the API server."""
    path = write(
        tmp_path / "deploy.yaml",
        """
        apiVersion: apps/v1
        kind: Deployment
        metadata: {name: web}
        spec:
          replicas: 1
          selector: {matchLabels: {app: web}}
          template:
            metadata: {labels: {app: web}}
            spec:
              overhead: {cpu: 0.1}
              containers:
              - name: web
                image: nginx
                resources:
                  limits: {cpu: 1, memory: 512Mi}
                  requests: {cpu: 0.5, memory: 128974848}
              volumes:
              - name: scratch
                emptyDir: {sizeLimit: 1073741824}
        """,
    )
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    assert len(cluster.store.list("Pod", "default")) == 1


def test_non_quantity_numbers_stay_strict(tmp_path: Path) -> None:
    """Only quantities take numbers: an env value or a label must still be a string."""
    path = write(
        tmp_path / "pod.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata: {name: p}
        spec:
          containers:
          - name: c
            image: x
            resources:
              limits: {cpu: true}
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.containers[0].resources.limits.cpu"
    path2 = write(tmp_path / "pod2.yaml", POD.format(name="p") + "    env:\n    - {name: A, value: 1}\n")
    err2 = apply_error(path2)
    assert err2.path == "spec.containers[0].env[0].value"
    assert err2.line == line_of(path2, "value: 1")


def test_tf_validator_messages_keep_their_words(tmp_path: Path) -> None:
    path = write(
        tmp_path / "vn.yaml",
        """
        apiVersion: vrsim.tf/v1
        kind: VirtualNetwork
        metadata: {name: blue, project: k8s-default}
        spec: {subnet: 10.10.0.1/24}
        """,
    )
    err = apply_error(path)
    assert err.path == "spec.subnet"
    assert "IPv4" in err.message and "value error" not in err.message.lower()
    assert err.message.count("10.10.0.1/24") <= 2


def test_timestamps_may_be_strings(tmp_path: Path) -> None:
    path = write(
        tmp_path / "ns.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata:
          name: exported
          creationTimestamp: "2020-01-01T00:00:00Z"
        """,
    )
    Cluster().apply_paths([str(path)])


# --- 3. YAML hazards ----------------------------------------------------------------------


def test_invalid_yaml_gives_the_line(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.yaml", "apiVersion: v1\nkind: Pod\nmetadata:\n  name: [unclosed\nspec: {}\n")
    err = apply_error(path)
    assert err.file == str(path)
    assert err.line == 5
    assert "invalid YAML" in err.message


def test_tab_indentation_is_invalid_yaml(tmp_path: Path) -> None:
    path = tmp_path / "tabs.yaml"
    path.write_text("apiVersion: v1\nkind: Pod\nmetadata:\n\tname: x\n", encoding="utf-8")
    err = apply_error(path)
    assert err.line == 4


def test_duplicate_keys_are_refused(tmp_path: Path) -> None:
    path = write(
        tmp_path / "dup.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: first
          name: second
        spec:
          containers: [{name: c, image: x}]
        """,
    )
    err = apply_error(path)
    assert err.file == str(path)
    assert err.line == 5
    assert "duplicate" in err.message and "'name'" in err.message
    assert "line 4" in err.message


def test_duplicate_keys_in_a_later_document(tmp_path: Path) -> None:
    path = write(tmp_path / "dup.yaml", POD.format(name="ok") + "---\n" + "apiVersion: v1\nkind: Namespace\nmetadata: {name: a, name: b}\n")
    err = apply_error(path)
    assert err.line == line_of(path, "name: a, name: b")


def test_non_utf8_bytes(tmp_path: Path) -> None:
    path = tmp_path / "latin1.yaml"
    path.write_bytes("apiVersion: v1\nkind: Namespace\nmetadata:\n  name: caf\xe9\n".encode("latin-1"))
    err = apply_error(path)
    assert err.file == str(path)
    assert "UTF-8" in err.message
    assert err.line == 4


def test_nul_bytes(tmp_path: Path) -> None:
    path = tmp_path / "binary.yaml"
    path.write_bytes(b"apiVersion: v1\x00\x00\nkind: Namespace\n")
    err = apply_error(path)
    assert err.file == str(path)
    assert "NUL" in err.message


def test_binary_file_with_manifest_suffix_in_a_directory(tmp_path: Path) -> None:
    write(tmp_path / "a.yaml", POD.format(name="a"))
    (tmp_path / "b.yaml").write_bytes(bytes(range(256)))
    err = apply_error(tmp_path)
    assert err.file == str(tmp_path / "b.yaml")


def test_utf8_bom_is_accepted(tmp_path: Path) -> None:
    path = tmp_path / "bom.yaml"
    path.write_bytes(b"\xef\xbb\xbf" + textwrap.dedent(POD.format(name="bom")).lstrip().encode())
    assert names(load_paths([path])) == ["bom"]


@pytest.mark.parametrize("content", ["", "\n\n", "# just a comment\n", "---\n---\n"])
def test_empty_file_gives_no_objects(tmp_path: Path, content: str) -> None:
    path = tmp_path / "empty.yaml"
    path.write_text(content, encoding="utf-8")
    assert load_paths([path]) == []
    assert Cluster().apply_paths([str(path)]) == []


def alias_bomb(levels: int = 9, fanout: int = 10) -> str:
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, levels):
        refs = ", ".join([f"*a{level - 1}"] * fanout)
        lines.append(f"a{level}: &a{level} [{refs}]")
    return "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + "\n".join("  " + l for l in lines) + "\n"


def test_alias_bomb_is_refused_quickly(tmp_path: Path) -> None:
    path = write(tmp_path / "bomb.yaml", alias_bomb())
    started = time.monotonic()
    try:
        with pytest.raises(InputError) as info:
            Cluster().apply_paths([str(path)])
    except MemoryError:  # pragma: no cover - the bug this test is about
        pytest.fail("alias bomb exhausted memory instead of being refused")
    elapsed = time.monotonic() - started
    assert elapsed < 10.0, f"refusing the bomb took {elapsed:.1f}s"
    assert info.value.file == str(path)
    assert "alias" in info.value.message


def test_alias_bomb_in_json_suffix_is_not_yaml(tmp_path: Path) -> None:
    """A .json file is read as JSON: YAML anchors there are a JSON syntax error, not a bomb."""
    path = write(tmp_path / "bomb.json", alias_bomb())
    err = apply_error(path)
    assert "JSON" in err.message


def nested(depth: int) -> str:
    """A Pod (as JSON text, which is YAML too) whose free-form ``fieldsV1`` nests ``depth`` deep."""
    deep = '{"f": ' * depth + "{}" + "}" * depth
    return (
        '{"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "deep", "managedFields": '
        '[{"manager": "kubectl", "fieldsV1": ' + deep + '}]}, "spec": {"containers": [{"name": "c", "image": "x"}]}}'
    )


@pytest.mark.parametrize("suffix", ["yaml", "json"])
@pytest.mark.parametrize("depth", [600, 5000])
def test_deep_nesting_is_an_input_error_not_a_recursion_error(tmp_path: Path, suffix: str, depth: int) -> None:
    path = tmp_path / f"deep.{suffix}"
    path.write_text(nested(depth), encoding="utf-8")
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.file == str(path)
    assert "nest" in err.message
    assert cluster.store.get("Pod", "default", "deep") is None


@pytest.mark.parametrize("suffix", ["yaml", "json"])
def test_moderate_nesting_is_accepted(tmp_path: Path, suffix: str) -> None:
    path = tmp_path / f"deep.{suffix}"
    path.write_text(nested(40), encoding="utf-8")
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    assert cluster.store.get("Pod", "default", "deep") is not None


def test_small_aliases_are_fine(tmp_path: Path) -> None:
    path = write(
        tmp_path / "anchors.yaml",
        """
        apiVersion: v1
        kind: Pod
        metadata:
          name: anchored
          labels: &labels {app: web, tier: front}
          annotations: {}
        spec:
          containers:
          - name: c
            image: x
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: anchored}
        spec:
          selector: {app: web}
          ports: [{port: 80}]
        """,
    )
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    assert cluster.store.get("Pod", "default", "anchored")["metadata"]["labels"] == {"app": "web", "tier": "front"}


# --- 4. the article's LoadBalancer YAML, exactly as printed ---------------------------------

ARTICLE_LB = """\
apiVersion: v1
kind: Service
metadata:
  name: service-web-lb
  spec:
    ports:
    - port: 8888
    targetPort: 80 selector:
  app: webserver
  type: LoadBalancer
"""


def test_article_loadbalancer_yaml_points_at_line_8(tmp_path: Path) -> None:
    path = tmp_path / "service-web-lb.yaml"
    path.write_text(ARTICLE_LB, encoding="utf-8")
    assert path.read_text().splitlines()[7] == "    targetPort: 80 selector:"
    err = apply_error(path)
    assert err.file == str(path)
    assert err.line == 8
    assert str(err).startswith(f"{path}:8: ")


def test_article_loadbalancer_yaml_fixed_is_accepted(tmp_path: Path) -> None:
    path = write(
        tmp_path / "service-web-lb.yaml",
        """
        apiVersion: v1
        kind: Service
        metadata:
          name: service-web-lb
        spec:
          ports:
          - port: 8888
            targetPort: 80
          selector:
            app: webserver
          type: LoadBalancer
        """,
    )
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    svc = cluster.store.get("Service", "default", "service-web-lb")
    assert svc["spec"]["type"] == "LoadBalancer"
    assert 30000 <= svc["spec"]["ports"][0]["nodePort"] <= 32767


# --- 5. all-or-nothing apply ----------------------------------------------------------------


def test_bad_service_after_good_namespace_applies_nothing(tmp_path: Path) -> None:
    path = write(
        tmp_path / "batch.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: team-a}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: good, namespace: team-a}
        spec:
          clusterIP: 10.96.0.50
          ports: [{port: 80}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: bad, namespace: team-a}
        spec:
          ports:
          - port: 0
        """,
    )
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.path == "spec.ports[0].port"
    assert err.line == line_of(path, "- port: 0")
    assert cluster.store.get("Namespace", "", "team-a") is None
    assert cluster.store.get("Service", "team-a", "good") is None
    # nothing leaked: the requested address is still free and services still admit
    cluster.apply_objects(
        [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "later"},
          "spec": {"clusterIP": "10.96.0.50", "ports": [{"port": 80}]}}]
    )
    assert cluster.store.get("Service", "default", "later")["spec"]["clusterIP"] == "10.96.0.50"


def test_admission_failure_late_in_a_batch_rolls_back_everything(tmp_path: Path) -> None:
    """The second service passes validation but fails admission: the first must not stay allocated."""
    path = write(
        tmp_path / "batch.yaml",
        """
        apiVersion: v1
        kind: Namespace
        metadata: {name: team-b}
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: first, namespace: team-b}
        spec:
          type: NodePort
          clusterIP: 10.96.0.60
          ports: [{port: 80, nodePort: 30080}]
        ---
        apiVersion: v1
        kind: Service
        metadata: {name: second, namespace: team-b}
        spec:
          clusterIP: 10.200.0.1
          ports: [{port: 80}]
        """,
    )
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.file == str(path)
    assert "10.200.0.1" in err.message
    assert cluster.store.get("Namespace", "", "team-b") is None
    assert cluster.store.get("Service", "team-b", "first") is None
    cluster.apply_objects(
        [{"apiVersion": "v1", "kind": "Service", "metadata": {"name": "again"},
          "spec": {"type": "NodePort", "clusterIP": "10.96.0.60", "ports": [{"port": 80, "nodePort": 30080}]}}]
    )
    svc = cluster.store.get("Service", "default", "again")
    assert svc["spec"]["clusterIP"] == "10.96.0.60"
    assert svc["spec"]["ports"][0]["nodePort"] == 30080


def test_failed_apply_leaves_earlier_state_intact(tmp_path: Path) -> None:
    good = write(tmp_path / "good.yaml", POD.format(name="keep"))
    cluster = Cluster()
    cluster.apply_paths([str(good)])
    ip = cluster.store.get("Pod", "default", "keep")["status"]["podIP"]
    bad = write(tmp_path / "bad.yaml", POD.format(name="another") + "---\n" + POD.format(name="Bad"))
    apply_error(bad, cluster)
    assert cluster.store.get("Pod", "default", "another") is None
    assert cluster.store.get("Pod", "default", "keep")["status"]["podIP"] == ip


# --- 6. Service admission errors ------------------------------------------------------------


def svc_yaml(name: str, spec: str) -> str:
    return f"apiVersion: v1\nkind: Service\nmetadata:\n  name: {name}\nspec:\n{textwrap.indent(textwrap.dedent(spec).strip(), '  ')}\n"


def test_cluster_ip_outside_service_cidr(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.yaml", svc_yaml("s", "clusterIP: 10.200.0.10\nports: [{port: 80}]"))
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.file == str(path)
    assert "10.200.0.10" in err.message and "10.96.0.0/12" in err.message
    assert err.line is not None
    assert cluster.store.get("Service", "default", "s") is None


def test_same_requested_cluster_ip_twice(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", svc_yaml("a", "clusterIP: 10.96.1.1\nports: [{port: 80}]"))
    second = write(tmp_path / "b.yaml", svc_yaml("b", "clusterIP: 10.96.1.1\nports: [{port: 80}]"))
    cluster = Cluster()
    cluster.apply_paths([str(first)])
    err = apply_error(second, cluster)
    assert err.file == str(second)
    assert "10.96.1.1" in err.message and "default/a" in err.message
    assert cluster.store.get("Service", "default", "a")["spec"]["clusterIP"] == "10.96.1.1"
    assert cluster.store.get("Service", "default", "b") is None


def test_same_requested_cluster_ip_twice_in_one_file(tmp_path: Path) -> None:
    path = write(
        tmp_path / "both.yaml",
        svc_yaml("a", "clusterIP: 10.96.1.2\nports: [{port: 80}]") + "---\n" + svc_yaml("b", "clusterIP: 10.96.1.2\nports: [{port: 80}]"),
    )
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.file == str(path)
    assert err.line is not None and err.line > line_of(path, "name: b") - 1
    assert cluster.store.get("Service", "default", "a") is None


def test_reapplying_the_same_service_keeps_its_cluster_ip(tmp_path: Path) -> None:
    path = write(tmp_path / "a.yaml", svc_yaml("a", "clusterIP: 10.96.1.3\nports: [{port: 80}]"))
    cluster = Cluster()
    cluster.apply_paths([str(path)])
    cluster.apply_paths([str(path)])
    assert cluster.store.get("Service", "default", "a")["spec"]["clusterIP"] == "10.96.1.3"


def test_duplicate_requested_node_port(tmp_path: Path) -> None:
    first = write(tmp_path / "a.yaml", svc_yaml("a", "type: NodePort\nports: [{port: 80, nodePort: 30080}]"))
    second = write(tmp_path / "b.yaml", svc_yaml("b", "type: NodePort\nports: [{port: 81, nodePort: 30080}]"))
    cluster = Cluster()
    cluster.apply_paths([str(first)])
    err = apply_error(second, cluster)
    assert err.file == str(second)
    assert "30080" in err.message
    assert cluster.store.get("Service", "default", "b") is None


@pytest.mark.parametrize("node_port", [29999, 32768, 8080])
def test_node_port_outside_range(tmp_path: Path, node_port: int) -> None:
    path = write(tmp_path / "svc.yaml", svc_yaml("s", f"type: NodePort\nports: [{{port: 80, nodePort: {node_port}}}]"))
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert err.file == str(path)
    assert str(node_port) in err.message and "30000-32767" in err.message
    assert cluster.store.get("Service", "default", "s") is None


def test_invalid_cluster_ip_string(tmp_path: Path) -> None:
    path = write(tmp_path / "svc.yaml", svc_yaml("s", "clusterIP: 10.96.0.300\nports: [{port: 80}]"))
    err = apply_error(path)
    assert err.path == "spec.clusterIP"
    assert err.line == line_of(path, "clusterIP")


def test_admission_errors_name_their_field(tmp_path: Path) -> None:
    """A ClusterIP or NodePort conflict points at the field, at its own line."""
    taken = svc_yaml("a", "clusterIP: 10.96.1.9\ntype: NodePort\nports: [{name: h, port: 80, nodePort: 30090}]")
    cluster = Cluster()
    cluster.apply_paths([str(write(tmp_path / "a.yaml", taken))])
    ip = write(tmp_path / "b.yaml", svc_yaml("b", "clusterIP: 10.96.1.9\nports: [{port: 80}]"))
    err = apply_error(ip, cluster)
    assert (err.path, err.line) == ("spec.clusterIP", line_of(ip, "clusterIP"))
    port = write(
        tmp_path / "c.yaml",
        svc_yaml("c", "type: NodePort\nports:\n- {name: g, port: 81}\n- {name: h, port: 80, nodePort: 30090}"),
    )
    err = apply_error(port, cluster)
    assert (err.path, err.line) == ("spec.ports[1].nodePort", line_of(port, "30090"))
    assert "30090/TCP is already allocated to service default/a" in err.message


def test_the_same_object_twice_in_one_apply_is_an_error(tmp_path: Path) -> None:
    path = write(tmp_path / "pods.yaml", POD.format(name="web") + "---\n" + POD.format(name="web"))
    cluster = Cluster()
    err = apply_error(path, cluster)
    assert (err.file, err.path, err.line) == (str(path), "metadata.name", line_of(path, "name: web", 2))
    assert f"first at {path}:{line_of(path, 'name: web')}" in err.message
    assert cluster.store.get("Pod", "default", "web") is None  # all or nothing
    # across applies it is an update, as with kubectl apply
    single = write(tmp_path / "pod.yaml", POD.format(name="web"))
    cluster.apply_paths([str(single)])
    cluster.apply_paths([str(single)])
    assert cluster.store.get("Pod", "default", "web") is not None


# --- 7. scenario parsing --------------------------------------------------------------------

SCENARIO_HEAD = """\
apiVersion: vrsim/v1
kind: Scenario
metadata:
  name: t
"""


def scenario(tmp_path: Path, body: str, name: str = "scenario.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SCENARIO_HEAD + textwrap.dedent(body).lstrip("\n"), encoding="utf-8")
    return path


def scenario_error(path: Path, **kwargs) -> InputError:
    with pytest.raises(InputError) as info:
        load_scenario(path, **kwargs)
    assert info.value.file == str(path)
    return info.value


@pytest.fixture
def scenario_dir(tmp_path: Path) -> Path:
    write(tmp_path / "manifests" / "pod.yaml", POD.format(name="busybox"))
    return tmp_path


def test_valid_scenario_parses(scenario_dir: Path) -> None:
    path = scenario(
        scenario_dir,
        """
        cluster:
          nodes:
            - {name: n1, ip: 172.27.10.74}
        steps:
          - apply: manifests/pod.yaml
            namespace: default
          - apply:
              apiVersion: v1
              kind: Namespace
              metadata: {name: other}
          - delete: {kind: Pod, namespace: default, name: busybox}
          - ping: {from: default/busybox, to: other/busybox, count: 2}
            expect: unreachable
          - connect: {from: a/b, to: service/default/web, port: 80, flows: 10}
            expect: {reachable: true, backends: all, maxImbalance: 0.2}
        """,
    )
    sc = load_scenario(path)
    assert sc.name == "t"
    assert [n.name for n in sc.cluster.nodes] == ["n1"]
    kinds = [type(s) for s in sc.steps]
    assert kinds == [ApplyStep, ApplyStep, DeleteStep, CheckStep, CheckStep]
    assert sc.steps[0].manifests[0].obj["metadata"]["name"] == "busybox"
    assert sc.steps[0].namespace == "default"
    assert sc.steps[3].spec.count == 2 and sc.steps[3].expect.reachable is False
    assert sc.steps[4].expect.maxImbalance == 0.2
    assert sc.steps[3].line == line_of(path, "- ping:")


def test_scenario_unknown_top_level_key(tmp_path: Path) -> None:
    path = scenario(tmp_path, "stepz: []\n")
    err = scenario_error(path)
    assert err.path == "stepz"
    assert err.line == 5


def test_scenario_unknown_metadata_key(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: vrsim/v1\nkind: Scenario\nmetadata:\n  name: t\n  labels: {a: b}\nsteps: []\n", encoding="utf-8")
    err = scenario_error(path)
    assert err.path == "metadata.labels"
    assert err.line == 5


def test_scenario_unknown_step_kind(tmp_path: Path) -> None:
    path = scenario(tmp_path, "steps:\n  - pingg: {from: a/b, to: c/d}\n    expect: reachable\n")
    err = scenario_error(path)
    assert err.path == "steps[0].pingg"
    assert err.line == line_of(path, "pingg")
    assert "pingg" in err.message


def test_scenario_step_with_two_actions(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        steps:
          - apply: {apiVersion: v1, kind: Namespace, metadata: {name: x}}
          - ping: {from: a/b, to: c/d}
            connect: {from: a/b, to: c/d, port: 80}
            expect: reachable
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[1]"
    assert err.line == line_of(path, "- ping:")
    assert "exactly one" in err.message


def test_scenario_unknown_key_in_ping(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        steps:
          - ping:
              from: a/b
              to: c/d
              cout: 3
            expect: reachable
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[0].ping.cout"
    assert err.line == line_of(path, "cout")


def test_scenario_misspelt_required_key_in_ping(tmp_path: Path) -> None:
    """``form`` for ``from``: the unknown key is reported, not the ``from`` it leaves missing."""
    path = scenario(
        tmp_path,
        """
        steps:
          - ping:
              form: a/b
              to: c/d
            expect: reachable
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[0].ping.form"
    assert err.line == line_of(path, "form:")


def test_scenario_count_zero(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        steps:
          - ping:
              from: a/b
              to: c/d
              count: 0
            expect: reachable
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[0].ping.count"
    assert err.line == line_of(path, "count: 0")


def test_scenario_bad_expect_string(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        steps:
          - ping: {from: a/b, to: c/d}
            expect: reachble
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[0].expect"
    assert err.line == line_of(path, "expect:")
    assert "reachble" in err.message


def test_scenario_bad_expect_mapping_key(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        steps:
          - ping: {from: a/b, to: c/d}
            expect:
              reachable: false
              dropReasn: Policy
        """,
    )
    err = scenario_error(path)
    assert err.path == "steps[0].expect.dropReasn"
    assert err.line == line_of(path, "dropReasn")


def test_scenario_missing_expect(tmp_path: Path) -> None:
    path = scenario(tmp_path, "steps:\n  - ping: {from: a/b, to: c/d}\n")
    err = scenario_error(path)
    assert err.path == "steps[0].expect"


def test_scenario_node_with_bad_ip(tmp_path: Path) -> None:
    path = scenario(
        tmp_path,
        """
        cluster:
          nodes:
            - {name: worker01, ip: 172.27.10.74}
            - name: worker02
              ip: 172.27.10.300
        steps: []
        """,
    )
    err = scenario_error(path)
    assert err.path == "cluster.nodes[1].ip"
    assert err.line == line_of(path, "172.27.10.300")
    assert "172.27.10.300" in err.message
    assert "Value error" not in err.message and err.message.count("172.27.10.300") == 1


def test_scenario_unknown_cluster_key(tmp_path: Path) -> None:
    path = scenario(tmp_path, "cluster:\n  podSubnett: 10.32.0.0/12\nsteps: []\n")
    err = scenario_error(path)
    assert err.path == "cluster.podSubnett"
    assert err.line == line_of(path, "podSubnett")


def test_scenario_apply_path_outside_folder(tmp_path: Path) -> None:
    outside = write(tmp_path / "shared" / "pod.yaml", POD.format(name="outside"))
    folder = tmp_path / "scenarios"
    folder.mkdir()
    path = scenario(folder, "steps:\n  - apply: ../shared/pod.yaml\n")
    err = scenario_error(path)
    assert err.path == "steps[0].apply"
    assert err.line == line_of(path, "../shared/pod.yaml")
    assert "leaves" in err.message
    sc = load_scenario(path, allow_outside=True)
    assert sc.steps[0].manifests[0].source.file == str(outside.resolve())
    assert sc.steps[0].manifests[0].obj["metadata"]["name"] == "outside"


def test_scenario_apply_absolute_path_outside_folder(tmp_path: Path) -> None:
    outside = write(tmp_path / "shared" / "pod.yaml", POD.format(name="outside"))
    folder = tmp_path / "scenarios"
    folder.mkdir()
    path = scenario(folder, f"steps:\n  - apply: [{outside}]\n")
    err = scenario_error(path)
    assert err.path == "steps[0].apply[0]"


def test_scenario_apply_symlink_leaving_folder(tmp_path: Path) -> None:
    write(tmp_path / "shared" / "pod.yaml", POD.format(name="outside"))
    folder = tmp_path / "scenarios"
    folder.mkdir()
    (folder / "link").symlink_to(tmp_path / "shared", target_is_directory=True)
    path = scenario(folder, "steps:\n  - apply: link/pod.yaml\n")
    err = scenario_error(path)
    assert "leaves" in err.message


def test_scenario_apply_missing_path(tmp_path: Path) -> None:
    path = scenario(tmp_path, "steps:\n  - apply: manifests/nope.yaml\n")
    err = scenario_error(path)
    assert err.path == "steps[0].apply"
    assert err.line == line_of(path, "nope.yaml")
    assert "nope.yaml" in err.message


def test_scenario_inline_apply_error_has_scenario_line(tmp_path: Path) -> None:
    """An inline object's bad field is reported at its line in the scenario file."""
    from vrouter.lab.sim import Simulation

    path = scenario(
        tmp_path,
        """
        steps:
          - apply:
              apiVersion: v1
              kind: Service
              metadata: {name: s}
              spec:
                ports:
                - port: 80
                  protocl: TCP
        """,
    )
    with pytest.raises(InputError) as info:
        Simulation.from_path(path).build()
    assert info.value.file == str(path)
    assert info.value.path == "spec.ports[0].protocl"
    assert info.value.line == line_of(path, "protocl")


def test_scenario_apply_namespace_must_be_a_valid_name(scenario_dir: Path) -> None:
    path = scenario(scenario_dir, "steps:\n  - apply: manifests/pod.yaml\n    namespace: Team_A\n")
    err = scenario_error(path)
    assert err.path == "steps[0].namespace"
    assert err.line == line_of(path, "Team_A")


def test_scenario_with_two_documents(tmp_path: Path) -> None:
    path = scenario(tmp_path, "steps: []\n---\nsteps: []\n")
    scenario_error(path)


def test_scenario_bad_yaml_has_line(tmp_path: Path) -> None:
    path = scenario(tmp_path, "steps:\n  - ping: {from: a/b, to: c/d\n    expect: reachable\n")
    err = scenario_error(path)
    assert err.line is not None and err.line >= 6


def test_scenario_alias_bomb_is_refused(tmp_path: Path) -> None:
    bomb = alias_bomb().split("data:\n", 1)[1]
    path = tmp_path / "bomb.yaml"
    path.write_text(SCENARIO_HEAD + "  description: boom\ncluster:\n  labels:\n" + textwrap.indent(bomb, "  ") + "steps: []\n", encoding="utf-8")
    started = time.monotonic()
    scenario_error(path)
    assert time.monotonic() - started < 10.0


@pytest.mark.parametrize("kind_line", ['kind: "Scenario"', "kind: 'Scenario'", "kind: Scenario  # the file's kind", "kind:   Scenario"])
def test_scenario_is_recognised_however_kind_is_written(tmp_path: Path, kind_line: str) -> None:
    """A quoted or commented kind must not turn the scenario into an ignored object (0 checks)."""
    path = tmp_path / "s.yaml"
    path.write_text(
        f"apiVersion: vrsim/v1\n{kind_line}\nmetadata: {{name: q}}\n"
        "steps:\n  - ping: {from: a/b, to: c/d}\n    expect: reachable\n",
        encoding="utf-8",
    )
    sc = load_scenario(path)
    assert sc.name == "q"
    assert len(sc.checks) == 1


def test_scenario_with_misspelt_kind_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "s.yaml"
    path.write_text("apiVersion: vrsim/v1\nkind: Scenaro\nsteps: []\n", encoding="utf-8")
    err = scenario_error(path)
    assert err.path == "kind"
    assert err.line == 2


def test_plain_manifest_file_is_a_scenario(scenario_dir: Path) -> None:
    sc = load_scenario(scenario_dir / "manifests" / "pod.yaml")
    assert sc.checks == []
    assert names(sc.steps[0].manifests) == ["busybox"]
    assert sc.steps[0].manifests[0].source.line == 1


def test_plain_manifest_directory_is_a_scenario(scenario_dir: Path) -> None:
    sc = load_scenario(scenario_dir / "manifests")
    assert len(sc.steps) == 1 and isinstance(sc.steps[0], ApplyStep)
    assert names(sc.steps[0].manifests) == ["busybox"]


def test_parse_manifest_text_reports_given_file() -> None:
    with pytest.raises(InputError) as info:
        parse_manifest_text("a: 1\na: 2\n", "virtual.yaml")
    assert info.value.file == "virtual.yaml"
    assert info.value.line == 2
