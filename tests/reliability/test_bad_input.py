"""Bad input, everywhere a user can type (issue 8 item 1): a catalogue, one case per mistake.

Every case goes through the ``vrsim`` command — ``run`` for scenario files, ``get pods -f`` and
``reach -f`` for plain manifest files and directories, ``ping``/``connect`` for arguments (the
file is then ``<command line>``) — and must end the same way: exit code
2, exactly one line on stderr (``error: FILE[:LINE]: [FIELD.PATH: ]message``) naming the file
and the place, never a traceback; with ``--json`` (``-o json``) one JSON object
``{"error", "file", "path"}`` on stdout and nothing on stderr.

Not every mistake is an error: an object that cannot be realised (a namespace annotation
naming a VN that does not exist) is kept with a condition and an event, and the checks that
need it fail (exit 1) — those are here too, so the line between the two stays where the spec
draws it (spec/scenario-and-cli.md §1).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

runner = CliRunner()

HEAD = "apiVersion: vrsim/v1\nkind: Scenario\nmetadata:\n  name: bad\n"

POD = """\
apiVersion: v1
kind: Pod
metadata:
  name: busybox
spec:
  containers:
  - name: busybox
    image: busybox
"""

SERVICE = """\
apiVersion: v1
kind: Service
metadata:
  name: web
spec:
  selector: {{app: web}}
  ports:
  - port: {port}
    targetPort: {target}
"""

NETPOL_IPBLOCK = """\
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: np
spec:
  podSelector: {}
  ingress:
  - from:
    - ipBlock:
        cidr: 10.0.0.0/33
"""

TF_VN = """\
apiVersion: vrsim.tf/v1
kind: VirtualNetwork
metadata: {name: blue-net, project: k8s-default}
spec:
  subnet: 10.10.0.0/24
"""


def billion_laughs() -> str:
    """Nine levels of ten aliases each: 10**9 strings once expanded."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for level in range(1, 9):
        lines.append(f"a{level}: &a{level} [" + ", ".join([f"*a{level - 1}"] * 10) + "]")
    return "".join(f"  {line}\n" for line in lines)


def write(path: Path, text: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(text, bytes):
        path.write_bytes(text)
    else:
        path.write_text(text, encoding="utf-8")
    return path


def line_of(path: Path, needle: str, nth: int = 1) -> int:
    """1-based line of the ``nth`` line of ``path`` holding ``needle``."""
    hits = [n for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1) if needle in line]
    return hits[nth - 1]


def scenario(tmp_path: Path, body: str, name: str = "scenario.yaml") -> Path:
    """A scenario in ``tmp_path/s`` beside ``manifests/pod.yaml``, with ``body`` after its head."""
    write(tmp_path / "s" / "manifests" / "pod.yaml", POD)
    return write(tmp_path / "s" / name, HEAD + body)


# --- the catalogue -----------------------------------------------------------------------------


@dataclass
class Case:
    """A mistake: the command it is made through, the file the error must name, and where."""

    args: list[str]  # the vrsim command; {json} is replaced by the JSON switch of that command
    file: Path
    path: str | None  # the field path the error names (None: the line alone says where)
    line: int | None  # the line the error names (None: the whole file is the mistake)
    words: str  # something the message must say


Builder = Callable[[Path], Case]
CASES: dict[str, Builder] = {}


def case(name: str) -> Callable[[Builder], Builder]:
    def register(builder: Builder) -> Builder:
        CASES[name] = builder
        return builder

    return register


def get(file: Path) -> list[str]:
    return ["get", "pods", "-A", "-f", str(file)]


def reach(file: Path) -> list[str]:
    return ["reach", "-f", str(file)]


def run(file: Path) -> list[str]:
    return ["run", str(file)]


# malformed text


@case("malformed-yaml-manifest")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD.replace("  name: busybox\nspec", "  name: [busybox\nspec"))
    return Case(get(f), f, None, 5, "invalid YAML")


@case("malformed-yaml-scenario")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n   - ping: {from: default/busybox}\n")
    return Case(run(f), f, None, 7, "invalid YAML")


@case("tab-indented-yaml")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD.replace("  - name: busybox", "\t- name: busybox"))
    return Case(reach(f), f, None, 7, "invalid YAML")


@case("malformed-json")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.json", '{"apiVersion": "v1", "kind": "Pod",\n "metadata": {"name": "a",},\n "spec": {}}\n')
    return Case(reach(f), f, None, 2, "invalid JSON")


@case("malformed-json-scenario")
def _(tmp: Path) -> Case:
    f = write(tmp / "s" / "scenario.json", '{"apiVersion": "vrsim/v1", "kind": "Scenario",\n "steps": [\n}\n')
    return Case(run(f), f, None, 3, "invalid JSON")


@case("non-utf8-bytes")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "ns.yaml", b"apiVersion: v1\nkind: Namespace\nmetadata:\n  name: caf\xe9\n")
    return Case(get(f), f, None, 4, "not UTF-8")


@case("non-utf8-scenario")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps: []\n")
    f.write_bytes(f.read_bytes().replace(b"name: bad", b"name: b\xffd"))
    return Case(run(f), f, None, 4, "not UTF-8")


@case("control-character")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD.replace("image: busybox", "image: busy\x01box"))
    return Case(get(f), f, None, 8, "unacceptable character")


@case("empty-manifest-file")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "empty.yaml", "")
    return Case(get(f), f, None, None, "nothing to apply")


@case("comments-only-scenario")
def _(tmp: Path) -> Case:
    f = write(tmp / "s" / "scenario.yaml", "# a scenario, one day\n---\n")
    return Case(run(f), f, None, None, "nothing to apply")


@case("empty-scenario-apply-list")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: []\n")
    return Case(run(f), f, "steps[0].apply", 6, "applies nothing")


# misspelt, unknown and mistyped fields


@case("misspelt-field-contaners")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD.replace("containers:", "contaners:"))
    return Case(get(f), f, "spec.contaners", 6, "did you mean 'containers'")


@case("misspelt-field-in-a-scenario-manifest")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n")
    manifest = write(tmp / "s" / "manifests" / "pod.yaml", POD.replace("image: busybox", "imagee: busybox"))
    return Case(run(f), manifest, "spec.containers[0].imagee", 8, "did you mean 'image'")


@case("unknown-field")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port=80, target=80) + "  sessionAfinity: ClientIP\n")
    return Case(reach(f), f, "spec.sessionAfinity", 10, "unknown field")


@case("unknown-scenario-key")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: default/busybox, size: 64}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.size", 7, "unknown key 'size'")


@case("unknown-cluster-setting")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "cluster:\n  podSubnett: 10.32.0.0/12\nsteps: []\n")
    return Case(run(f), f, "cluster.podSubnett", 6, "unknown key")


@case("wrong-type-string-port")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port='"80"', target=80))
    return Case(get(f), f, "spec.ports[0].port", 8, "valid integer")


@case("wrong-type-list-for-mapping")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD.replace("  name: busybox\nspec", "  name: busybox\n  labels: [app, web]\nspec"))
    return Case(get(f), f, "metadata.labels", 5, "dictionary")


@case("wrong-type-scenario-count")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: default/busybox, count: three}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.count", 7, "integer")


@case("wrong-type-steps")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps: {apply: manifests/pod.yaml}\n")
    return Case(run(f), f, "steps", 5, "steps must be a list")


# CIDRs and ports


@case("invalid-cidr-tf-subnet")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "vn.yaml", TF_VN.replace("10.10.0.0/24", "10.10.0.0/33"))
    return Case(get(f), f, "spec.subnet", 5, "invalid IPv4 subnet")


@case("invalid-cidr-tf-subnet-host-bits")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "vn.yaml", TF_VN.replace("10.10.0.0/24", "10.10.0.1/24"))
    return Case(get(f), f, "spec.subnet", 5, "10.10.0.1/24")


@case("invalid-cidr-ipblock")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "np.yaml", NETPOL_IPBLOCK)
    return Case(reach(f), f, "spec.ingress[0].from[0].ipBlock.cidr", 10, "invalid CIDR")


@case("invalid-cidr-cluster-pod-subnet")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "cluster:\n  podSubnet: 10.32.0.0/40\nsteps:\n  - apply: manifests/pod.yaml\n")
    return Case(run(f), f, "cluster.podSubnet", 6, "10.32.0.0/40")


@case("port-zero")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port=0, target=80))
    return Case(get(f), f, "spec.ports[0].port", 8, "outside 1-65535")


@case("port-70000")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port=70000, target=80))
    return Case(reach(f), f, "spec.ports[0].port", 8, "outside 1-65535")


@case("target-port-name-too-long")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port=80, target="http-alternative-port"))
    return Case(get(f), f, "spec.ports[0].targetPort", 9, "IANA service name")


@case("container-port-name-too-long")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pod.yaml", POD + "    ports:\n    - {containerPort: 8080, name: http-alternative-port}\n")
    return Case(get(f), f, "spec.containers[0].ports[0].name", 10, "IANA service name")


@case("check-port-70000")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - connect: {from: default/busybox, to: default/busybox, port: 70000}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].connect.port", 7, "65535")


@case("endpoint-port-70000")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - connect: {from: default/busybox, to: '10.1.1.1:70000'}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].connect.to", 7, "outside 1-65535")


# duplicates


@case("duplicate-object-in-one-file")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "pods.yaml", POD + "---\n" + POD.replace("image: busybox", "image: nginx"))
    return Case(get(f), f, "metadata.name", line_of(f, "name: busybox", 3), f"first at {f}:4")


@case("duplicate-object-across-files-of-a-directory")
def _(tmp: Path) -> Case:
    first = write(tmp / "app" / "a.yaml", POD)
    second = write(tmp / "app" / "b.yaml", POD)
    return Case(reach(tmp / "app"), second, "metadata.name", 4, f"first at {first}:4")


@case("duplicate-namespace-in-a-list")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "ns.yaml", "apiVersion: v1\nkind: List\nitems:\n- {apiVersion: v1, kind: Namespace, metadata: {name: team}}\n- {apiVersion: v1, kind: Namespace, metadata: {name: team}}\n")
    return Case(get(f), f, "metadata.name", 5, f"first at {f}:4")


@case("duplicate-object-in-one-scenario-apply-step")
def _(tmp: Path) -> Case:
    body = "steps:\n  - apply:\n      - manifests/pod.yaml\n      - {apiVersion: v1, kind: Pod, metadata: {name: busybox}, spec: {containers: [{name: c, image: x}]}}\n"
    f = scenario(tmp, body)
    return Case(run(f), f, "metadata.name", 8, f"first at {tmp / 's' / 'manifests' / 'pod.yaml'}:4")


@case("duplicate-tf-object")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "vn.yaml", TF_VN + "---\n" + TF_VN.replace("10.10.0.0/24", "10.11.0.0/24"))
    return Case(get(f), f, "metadata.name", line_of(f, "metadata", 2), f"VirtualNetwork k8s-default/blue-net appears twice in one apply; first at {f}:3")


@case("duplicate-cluster-ip")
def _(tmp: Path) -> Case:
    one = SERVICE.format(port=80, target=80).replace("spec:\n", "spec:\n  clusterIP: 10.96.0.10\n")
    f = write(tmp / "app" / "svc.yaml", one + "---\n" + one.replace("name: web", "name: web2"))
    return Case(get(f), f, "spec.clusterIP", line_of(f, "clusterIP", 2), "already allocated to service default/web")


@case("duplicate-node-port")
def _(tmp: Path) -> Case:
    one = "apiVersion: v1\nkind: Service\nmetadata: {name: a}\nspec:\n  type: NodePort\n  ports:\n  - {name: h, port: 80, nodePort: 30080}\n"
    two = one.replace("name: a}", "name: b}").replace("  - {name: h, port: 80", "  - {name: g, port: 81, nodePort: 30081}\n  - {name: h, port: 80")
    f = write(tmp / "app" / "svc.yaml", one + "---\n" + two)
    return Case(get(f), f, "spec.ports[1].nodePort", line_of(f, "30080", 2), "already allocated")


@case("cluster-ip-outside-the-service-range")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "svc.yaml", SERVICE.format(port=80, target=80).replace("spec:\n", "spec:\n  clusterIP: 10.200.0.1\n"))
    return Case(get(f), f, "spec.clusterIP", 6, "not in the valid service range")


# references to missing things


@case("delete-missing-object")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - delete: {kind: Pod, namespace: default, name: nginx}\n")
    return Case(run(f), f, "steps[1].delete.name", 7, "not found")


@case("delete-unknown-kind")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - delete: {kind: Widget, name: busybox}\n")
    return Case(run(f), f, "steps[1].delete.kind", 7, "unknown kind 'Widget'")


@case("check-of-a-missing-pod")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: default/nginx}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.to", 7, "no pod or workload default/nginx")


@case("check-from-a-missing-service")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - connect: {from: default/busybox, to: service/default/web, port: 80}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].connect.to", 7, "no service default/web")


@case("same-backends-as-an-unknown-check")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: default/busybox}\n    expect: {sameBackendsAs: before}\n")
    return Case(run(f), f, "steps[1].expect.sameBackendsAs", 8, "no earlier check is named 'before'")


# unknown check kinds and endpoints


@case("unknown-check-kind")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - traceroute: {from: default/busybox, to: default/busybox}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].traceroute", 7, "unknown step kind 'traceroute'")


@case("unknown-endpoint")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: moon/base/alpha}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.to", 7, "unknown endpoint 'moon/base/alpha'")


@case("endpoint-that-cannot-send")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: service/default/web, to: default/busybox}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.from", 7, "cannot start a conversation")


@case("unknown-expectation")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - ping: {from: default/busybox, to: default/busybox}\n    expect: probably\n")
    return Case(run(f), f, "steps[1].expect", 8, "expect must be reachable, unreachable, refused or a mapping")


@case("unknown-endpoint-on-the-command-line")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n")
    return Case(["ping", "default/busybox", "moon/base/alpha", "-f", str(f)], Path("<command line>"), "ping.to", None, "unknown endpoint")


@case("unknown-protocol-on-the-command-line")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n")
    args = ["connect", "default/busybox", "default/busybox", "--port", "80", "--proto", "icmpv6", "-f", str(f)]
    return Case(args, Path("<command line>"), "connect.protocol", None, "'TCP', 'UDP', 'SCTP'")


# absurd sizes


@case("absurd-flows")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - connect: {from: default/busybox, to: default/busybox, port: 80, flows: 1000000000000}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].connect.flows", 7, "less than or equal to 64512")


@case("absurd-count")
def _(tmp: Path) -> Case:
    f = scenario(tmp, f"steps:\n  - apply: manifests/pod.yaml\n  - ping: {{from: default/busybox, to: default/busybox, count: {10**12}}}\n    expect: reachable\n")
    return Case(run(f), f, "steps[1].ping.count", 7, "less than or equal to 100000")


@case("absurd-replicas")
def _(tmp: Path) -> Case:
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web}\nspec:\n  replicas: 1000000000\n"
        "  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n"
    )
    f = write(tmp / "app" / "deploy.yaml", deployment)
    return Case(reach(f), f, "spec.replicas", 5, "more than the 10000 pods")


@case("absurd-job-parallelism")
def _(tmp: Path) -> Case:
    job = (
        "apiVersion: batch/v1\nkind: Job\nmetadata: {name: j}\nspec:\n  parallelism: 1000000000\n"
        "  template:\n    spec: {restartPolicy: Never, containers: [{name: c, image: x}]}\n"
    )
    f = write(tmp / "app" / "job.yaml", job)
    return Case(get(f), f, "spec.parallelism", 5, "more than the 10000 pods")


@case("absurd-wait")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/pod.yaml\n  - wait: 1.0e+300\n")
    return Case(run(f), f, "steps[1].wait.seconds", 7, "less than or equal to")


@case("absurd-flow-table")
def _(tmp: Path) -> Case:
    f = scenario(tmp, f"cluster:\n  vrouter: {{flowEntries: {10**12}}}\nsteps:\n  - apply: manifests/pod.yaml\n")
    return Case(run(f), f, "cluster.vrouter.flowEntries", 6, "less than or equal to")


@case("alias-bomb-manifest")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "bomb.yaml", "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: lol}\ndata:\n" + billion_laughs())
    return Case(get(f), f, None, 1, "alias bomb")


@case("alias-bomb-scenario")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps: []\nx-lol:\n" + billion_laughs())
    return Case(run(f), f, None, 1, "alias bomb")


@case("deep-nesting-manifest")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "deep.yaml", POD + "  x: " + "[" * 5000 + "]" * 5000 + "\n")
    return Case(get(f), f, None, 9, "nest")


@case("deep-nesting-json")
def _(tmp: Path) -> Case:
    f = write(tmp / "app" / "deep.json", '{"apiVersion": "v1", "kind": "Pod", "spec": ' + "[" * 50000 + "]" * 50000 + "}")
    return Case(reach(f), f, None, None, "nest")


@case("deep-nesting-scenario")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: " + "{a: " * 3000 + "b" + "}" * 3000 + "\n")
    return Case(run(f), f, None, 6, "nest")


# paths


@case("apply-outside-the-scenario-folder")
def _(tmp: Path) -> Case:
    write(tmp / "elsewhere.yaml", POD)
    f = scenario(tmp, "steps:\n  - apply: ../elsewhere.yaml\n")
    return Case(run(f), f, "steps[0].apply", 6, "--allow-outside")


@case("apply-absolute-path-outside")
def _(tmp: Path) -> Case:
    outside = write(tmp / "elsewhere" / "pod.yaml", POD)
    f = scenario(tmp, f"steps:\n  - apply:\n      - manifests/pod.yaml\n      - {outside}\n")
    return Case(run(f), f, "steps[0].apply[1]", 8, "leaves the scenario's folder")


@case("apply-through-a-symlink-outside")
def _(tmp: Path) -> Case:
    write(tmp / "secret" / "pod.yaml", POD)
    f = scenario(tmp, "steps:\n  - apply: link\n")
    (tmp / "s" / "link").symlink_to(tmp / "secret", target_is_directory=True)
    return Case(run(f), f, "steps[0].apply", 6, "leaves the scenario's folder")


@case("apply-a-path-too-long")
def _(tmp: Path) -> Case:
    f = scenario(tmp, f"steps:\n  - apply: {'x' * 5000}.yaml\n")
    return Case(run(f), f, "steps[0].apply", 6, "cannot be read")


@case("directory-with-no-manifests")
def _(tmp: Path) -> Case:
    write(tmp / "app" / "README.md", "# nothing to apply here\n")
    return Case(reach(tmp / "app"), tmp / "app", None, None, "no .yaml, .yml or .json file")


@case("scenario-applies-a-directory-with-no-manifests")
def _(tmp: Path) -> Case:
    write(tmp / "s" / "empty" / "notes.txt", "todo\n")
    f = scenario(tmp, "steps:\n  - apply: empty\n")
    return Case(run(f), f, "steps[0].apply", 6, "no .yaml, .yml or .json file")


@case("missing-file")
def _(tmp: Path) -> Case:
    return Case(run(tmp / "nope.yaml"), tmp / "nope.yaml", None, None, "No such file")


@case("missing-manifest-directory")
def _(tmp: Path) -> Case:
    return Case(get(tmp / "nope"), tmp / "nope", None, None, "No such file")


@case("scenario-applies-a-missing-file")
def _(tmp: Path) -> Case:
    f = scenario(tmp, "steps:\n  - apply: manifests/nginx.yaml\n")
    return Case(run(f), f, "steps[0].apply", 6, "does not exist")


# --- the contract, checked for every case --------------------------------------------------------


def invoke(args: list[str]):
    result = runner.invoke(app, args)
    # an exception other than the exit itself would be a crash the runner hid
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in result.stdout + result.stderr
    return result


def json_switch(args: list[str]) -> list[str]:
    return [*args, "--json"] if args[0] in ("run", "ping", "connect", "http") else [*args, "-o", "json"]


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_line_on_stderr_and_exit_2(tmp_path: Path, name: str) -> None:
    c = CASES[name](tmp_path)
    result = invoke(c.args)
    assert result.exit_code == 2, (result.exit_code, result.stdout[-500:], result.stderr)
    assert result.stdout == ""
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr
    where = f"{c.file}:{c.line}: " if c.line is not None else f"{c.file}: "
    assert lines[0].startswith(f"error: {where}"), (lines[0], where)
    if c.path is not None:
        assert lines[0].startswith(f"error: {where}{c.path}: "), lines[0]
    assert c.words in lines[0], lines[0]


@pytest.mark.parametrize("name", sorted(CASES))
def test_one_json_object_and_exit_2(tmp_path: Path, name: str) -> None:
    c = CASES[name](tmp_path)
    result = invoke(json_switch(c.args))
    assert result.exit_code == 2, (result.exit_code, result.stdout[-500:], result.stderr)
    assert result.stderr == ""
    error = json.loads(result.stdout)  # one document, nothing around it
    assert set(error) <= {"error", "file", "path", "line"} and {"error", "file", "path"} <= set(error)
    assert error["file"] == str(c.file)
    assert error["path"] == c.path
    assert error.get("line") == c.line
    assert c.words in error["error"]


def test_every_kind_of_mistake_is_in_the_catalogue() -> None:
    """The list of issue 8, item 1: each kind of mistake has at least one case."""
    kinds = [
        "malformed-yaml", "malformed-json", "non-utf8", "empty", "misspelt", "unknown-field", "wrong-type",
        "invalid-cidr", "port-zero", "port-70000", "name-too-long", "duplicate", "missing", "unknown-check-kind",
        "unknown-endpoint", "absurd-flows", "absurd-count", "absurd-replicas", "alias-bomb", "deep-nesting",
        "outside", "no-manifests",
    ]
    for kind in kinds:
        assert any(kind in name for name in CASES), kind


# --- not errors: what stays allowed ------------------------------------------------------------


def test_the_same_object_in_two_apply_steps_is_an_update(tmp_path: Path) -> None:
    """kubectl apply semantics: applying an object again (changed or not) updates it."""
    write(tmp_path / "s" / "manifests" / "pod-v2.yaml", POD.replace("image: busybox", "image: busybox:1.36"))
    f = scenario(tmp_path, "steps:\n  - apply: manifests/pod.yaml\n  - apply: manifests/pod.yaml\n  - apply: manifests/pod-v2.yaml\n")
    result = invoke(["get", "pods", "-o", "json", "-f", str(f)])
    assert result.exit_code == 0, result.stderr
    (pod,) = json.loads(result.stdout)["items"]
    assert pod["spec"]["containers"][0]["image"] == "busybox:1.36"


def test_same_name_in_other_namespaces_or_kinds_is_no_duplicate(tmp_path: Path) -> None:
    other_ns = POD.replace("  name: busybox\n", "  name: busybox\n  namespace: team\n", 1)
    service = SERVICE.format(port=80, target=80).replace("name: web", "name: busybox")
    f = write(tmp_path / "app" / "all.yaml", POD + "---\n" + other_ns + "---\n" + service)
    result = invoke(get(f))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 3


def test_a_namespace_applied_by_two_steps_with_the_namespace_flag(tmp_path: Path) -> None:
    """One file applied twice with different ``namespace:`` is two objects, not a duplicate."""
    namespaces = "  - apply:\n      - {apiVersion: v1, kind: Namespace, metadata: {name: a}}\n      - {apiVersion: v1, kind: Namespace, metadata: {name: b}}\n"
    f = scenario(tmp_path, "steps:\n" + namespaces + "  - apply: manifests/pod.yaml\n    namespace: a\n  - apply: manifests/pod.yaml\n    namespace: b\n")
    result = invoke(get(f))
    assert result.exit_code == 0, result.stderr
    assert {tuple(line.split()[:2]) for line in result.stdout.splitlines()[1:]} == {("a", "busybox"), ("b", "busybox")}


def test_allow_outside_permits_the_outside_path(tmp_path: Path) -> None:
    c = CASES["apply-outside-the-scenario-folder"](tmp_path)
    result = invoke(["run", "--allow-outside", str(c.file)])
    assert result.exit_code == 0, result.stderr


def test_an_empty_file_beside_others_in_a_directory_is_fine(tmp_path: Path) -> None:
    """kubectl skips empty files in a directory; only a directory with nothing at all is refused."""
    write(tmp_path / "app" / "empty.yaml", "# later\n")
    write(tmp_path / "app" / "pod.yaml", POD)
    assert invoke(get(tmp_path / "app")).exit_code == 0


def test_a_vn_annotation_naming_a_missing_vn_is_a_condition_not_an_error(tmp_path: Path) -> None:
    """spec §1: an object that cannot be realised is kept with a condition and an event; the
    run goes on and the checks that need it fail with that reason (exit 1, not 2)."""
    body = (
        "steps:\n"
        "  - apply:\n"
        "      apiVersion: v1\n"
        "      kind: Namespace\n"
        "      metadata:\n"
        "        name: blue\n"
        "        annotations:\n"
        "          opencontrail.org/network: '{\"project\": \"k8s-default\", \"name\": \"no-such-net\"}'\n"
        "  - apply: manifests/pod.yaml\n"
        "    namespace: blue\n"
        "  - apply: manifests/pod.yaml\n"
        "  - ping: {from: default/busybox, to: blue/busybox}\n"
        "    expect: reachable\n"
    )
    f = scenario(tmp_path, body)
    result = invoke(["run", "--json", str(f)])
    assert result.exit_code == 1, result.stdout
    (check,) = json.loads(result.stdout)["scenarios"][0]["checks"]
    assert check["passed"] is False and check["observed"]["dropReason"] == "NetworkNotFound"
    events = invoke(["get", "events", "-n", "blue", "-f", str(f)])
    assert events.exit_code == 0 and "NetworkNotFound" in events.stdout and "no-such-net" in events.stdout


def test_a_tf_policy_naming_a_missing_vn_is_kept(tmp_path: Path) -> None:
    policy = (
        "apiVersion: vrsim.tf/v1\nkind: NetworkPolicy\nmetadata: {name: p, project: k8s-default}\n"
        "spec:\n  rules: [{action: pass, src: k8s-default:nope, dst: any}]\n  attachTo: [k8s-default:nope]\n"
    )
    f = write(tmp_path / "app" / "policy.yaml", policy)
    result = invoke(["get", "policies", "-f", str(f)])
    assert result.exit_code == 0, result.stderr


def test_a_missing_fip_pool_leaves_the_loadbalancer_without_an_external_ip(tmp_path: Path) -> None:
    body = (
        'cluster: {publicFipPool: "k8s-default:no-pool"}\n'
        "steps:\n"
        "  - apply: {apiVersion: v1, kind: Service, metadata: {name: web}, spec: {type: LoadBalancer, ports: [{port: 80}]}}\n"
    )
    f = scenario(tmp_path, body)
    events = invoke(["get", "events", "-f", str(f)])
    assert events.exit_code == 0, events.stderr
    assert "NoFloatingIpPool" in events.stdout


def test_two_generate_name_objects_in_one_apply_are_two_objects(tmp_path: Path) -> None:
    """Names made from ``generateName`` are unique within the apply too, so they never look duplicated."""
    pod = POD.replace("  name: busybox\nspec", "  generateName: worker-\nspec")
    f = write(tmp_path / "app" / "pods.yaml", pod + "---\n" + pod)
    result = invoke(["get", "pods", "-o", "json", "-f", str(f)])
    assert result.exit_code == 0, result.stderr
    assert sorted(p["metadata"]["name"] for p in json.loads(result.stdout)["items"]) == ["worker-00001", "worker-00002"]


def test_null_fields_are_absent_fields(tmp_path: Path) -> None:
    """``replicas: null`` and ``matchLabels: null`` mean "not set", as to the API server."""
    deployment = (
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: web, labels: null}\nspec:\n  replicas: null\n"
        "  selector: {matchLabels: {app: web}, matchExpressions: null}\n  template:\n    metadata: {labels: {app: web}}\n"
        "    spec: {containers: [{name: c, image: nginx}]}\n"
        "---\napiVersion: v1\nkind: Namespace\nmetadata: {name: team, labels: null}\n"
    )
    f = write(tmp_path / "app" / "deploy.yaml", deployment)
    result = invoke(get(f))
    assert result.exit_code == 0, result.stderr
    assert len(result.stdout.splitlines()) == 2  # the header and one pod


def test_an_exported_status_is_not_taken_as_the_clusters(tmp_path: Path) -> None:
    """status is ignored on create, whatever it holds (it is not validated either)."""
    f = write(tmp_path / "app" / "pod.yaml", POD + "status: running\n---\n" + POD.replace("name: busybox\nspec", "name: other\nspec") + "status: {podIP: [1, 2]}\n")
    result = invoke(["get", "pods", "-o", "json", "-f", str(f)])
    assert result.exit_code == 0, result.stderr
    for pod in json.loads(result.stdout)["items"]:
        assert pod["status"]["podIP"].startswith("10.")
