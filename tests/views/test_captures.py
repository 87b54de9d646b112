"""Packet captures (``--pcap``), read back by independent readers: dpkt always, tshark when
installed (CI installs it). Expected values come from the cluster (node addresses from the
scenario, pod and Service addresses from the store, labels from the receiving node's MPLS
table), never from the capture writer."""

from __future__ import annotations

import shutil
import struct
import subprocess
from collections import Counter
from pathlib import Path

import dpkt
import pytest
from k8s_objects import pod
from typer.testing import CliRunner

from controlplane.config import ClusterConfig
from controlplane.inet import ip_int
from vrouter.cli.main import app
from vrouter.lab.capture import CaptureLog
from vrouter.lab.checks import run_check
from vrouter.lab.runner import run_scenario
from vrouter.lab.scenario import parse_check
from vrouter.lab.sim import Simulation
from vrouter.views.captures import write_captures

ROOT = Path(__file__).resolve().parents[2]
CLUSTERIP = ROOT / "scenarios/article/clusterip-service.yaml"
SERVICE = ("default", "nginx-deployment-clusterip-service")
TSHARK = shutil.which("tshark")


def checksum(data: bytes) -> int:
    """RFC 1071, written here again so the test does not trust the writer's."""
    if len(data) % 2:
        data += b"\0"
    total = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return total


def frames(path: Path) -> list[tuple[float, bytes]]:
    with path.open("rb") as f:
        return list(dpkt.pcapng.Reader(f))


def comments(path: Path) -> list[str]:
    """Each packet's comment, from the pcapng blocks parsed by dpkt."""
    data, out, at = path.read_bytes(), [], 0
    while at < len(data):
        kind, length = struct.unpack_from("<II", data, at)
        if kind == 6:
            block = dpkt.pcapng.EnhancedPacketBlockLE(data[at : at + length])
            out.append(next((o.text for o in block.opts if o.code == 1), ""))
        at += length
    return out


def assert_checksums(ip: dpkt.ip.IP) -> None:
    raw = bytes(ip)
    assert checksum(raw[: ip.hl * 4]) == 0xFFFF, "IPv4 header checksum"
    if ip.p in (6, 17):
        segment = raw[ip.hl * 4 : ip.len]
        pseudo = ip.src + ip.dst + struct.pack("!BBH", 0, ip.p, len(segment))
        assert checksum(pseudo + segment) == 0xFFFF, "TCP/UDP checksum"
    if ip.p == 1:
        assert checksum(raw[ip.hl * 4 : ip.len]) == 0xFFFF, "ICMP checksum"


@pytest.fixture(scope="module")
def clusterip(tmp_path_factory: pytest.TempPathFactory) -> tuple[Simulation, Path]:
    """The article's ClusterIP scenario run with a capture on every node; ``sim.spread`` is
    its first check's flows per backend (1000 connections from default/busybox)."""
    sim = Simulation.from_path(CLUSTERIP)
    sim.capture = CaptureLog()
    result = run_scenario(sim)
    assert result.passed
    sim.spread = result.checks[0].observed["backends"]
    out = tmp_path_factory.mktemp("pcap")
    write_captures(out, sim.capture.events(), [r.compiled for r in sim.fabric.runtimes])
    return sim, out


def addresses(sim: Simulation) -> dict[str, str]:
    store = sim.cluster.store
    ips = {f"{p['metadata']['namespace']}/{p['metadata']['name']}": p["status"]["podIP"] for p in store.list("Pod")}
    ips["vip"] = store.get("Service", *SERVICE)["spec"]["clusterIP"]
    for node in sim.scenario.cluster.nodes:
        ips[node.name] = node.ip
    return ips


def member_on(sim: Simulation, node: str) -> str:
    (name,) = [
        f"default/{p['metadata']['name']}"
        for p in sim.cluster.store.list("Pod", "default")
        if p["metadata"]["name"].startswith("nginx") and p["spec"]["nodeName"] == node
    ]
    return name


def test_fabric_capture_holds_the_ecmp_flows_as_mplsoudp(clusterip: tuple[Simulation, Path]) -> None:
    sim, out = clusterip
    ip = addresses(sim)
    remote = member_on(sim, "worker02")
    far = sim.node("worker02")
    remote_vif = next(i for i, v in far.vifs.items() if v.pod == remote)
    # the label worker02 gives the member's interface for traffic to the VIP (its floating IP)
    member_labels = {label for label, nh in far.labels.items() if far.nexthops[nh].vif == remote_vif and far.nexthops[nh].fip == ip_int(ip["vip"])}
    syns = Counter()
    for _, buf in frames(out / "worker01-fabric.pcap"):
        outer = dpkt.ethernet.Ethernet(buf).data
        assert_checksums(outer)
        if not (isinstance(outer.data, dpkt.udp.UDP) and outer.data.dport == 6635):
            continue
        entry = struct.unpack("!I", outer.data.data[:4])[0]
        label, bottom, ttl = entry >> 12, (entry >> 8) & 1, entry & 0xFF
        inner = dpkt.ip.IP(outer.data.data[4:])
        assert_checksums(inner)
        assert bottom == 1 and ttl == inner.ttl
        if dpkt.utils.inet_to_str(outer.src) == ip["worker01"] and isinstance(inner.data, dpkt.tcp.TCP) and inner.data.flags == dpkt.tcp.TH_SYN:
            assert dpkt.utils.inet_to_str(outer.dst) == ip["worker02"]
            syns[(label, dpkt.utils.inet_to_str(inner.src), dpkt.utils.inet_to_str(inner.dst), inner.data.dport)] += 1
    # the first check's 1000 flows from default/busybox: exactly those ECMP sent to worker02's
    # member crossed the fabric, to the VIP, with the label of the member's interface
    from_busybox = {k: n for k, n in syns.items() if k[1] == ip["default/busybox"]}
    assert len(member_labels) == 1 and set(from_busybox) == {(label, ip["default/busybox"], ip["vip"], 80) for label in member_labels}
    assert sum(from_busybox.values()) == sim.spread[remote] > 300


def test_member_interfaces_show_the_natted_headers(clusterip: tuple[Simulation, Path]) -> None:
    sim, out = clusterip
    ip = addresses(sim)
    for node in ("worker01", "worker02"):
        member = member_on(sim, node)
        vif = next(v for v in sim.node(node).vifs.values() if v.pod == member)
        seen = Counter()
        for _, buf in frames(out / f"{node}-{vif.name}.pcap"):
            pkt = dpkt.ethernet.Ethernet(buf).data
            assert_checksums(pkt)
            if isinstance(pkt.data, dpkt.tcp.TCP) and dpkt.utils.inet_to_str(pkt.src) == ip["default/busybox"]:
                seen["to member"] += 1
                assert dpkt.utils.inet_to_str(pkt.dst) == ip[member]  # DNAT'd: the pod's own address
            if isinstance(pkt.data, dpkt.tcp.TCP) and pkt.data.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK:
                seen["answers"] += 1
                assert dpkt.utils.inet_to_str(pkt.src) == ip[member]
        assert seen["to member"] > 300 and seen["answers"] > 300
    # the client sees the ClusterIP answer, never the member's address
    client = next(v for v in sim.node("worker01").vifs.values() if v.pod == "default/busybox")
    answers = [dpkt.ethernet.Ethernet(b).data for _, b in frames(out / f"worker01-{client.name}.pcap")]
    synacks = [p for p in answers if isinstance(p.data, dpkt.tcp.TCP) and p.data.flags == dpkt.tcp.TH_SYN | dpkt.tcp.TH_ACK]
    assert len(synacks) >= 1000 and {dpkt.utils.inet_to_str(p.src) for p in synacks} == {ip["vip"]}


def test_drops_carry_the_reason(clusterip: tuple[Simulation, Path]) -> None:
    sim, out = clusterip
    ip = addresses(sim)
    # the scenario's last check: ns-isolated/busybox straight to a pod, dropped NoDstRt on worker02
    notes = comments(out / "worker02-drops.pcap")
    dropped = [dpkt.ethernet.Ethernet(b).data for _, b in frames(out / "worker02-drops.pcap")]
    assert notes and all(n.startswith("dropped: NoDstRt") for n in notes)
    assert [dpkt.utils.inet_to_str(p.src) for p in dropped] == [ip["ns-isolated/busybox"]]
    assert "fabric-gateway-drops.pcap" in {p.name for p in out.iterdir()}  # the outside client's SYN


def test_timestamps_follow_the_simulated_clock(clusterip: tuple[Simulation, Path]) -> None:
    sim, out = clusterip
    for path in out.iterdir():
        times = [t for t, _ in frames(path)]
        assert times == sorted(times)
        assert times[-1] <= sim.fabric.now / 1e9 + 1e-6


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (CI installs it)")
def test_tshark_decodes_mpls_and_the_inner_tcp(clusterip: tuple[Simulation, Path]) -> None:
    _, out = clusterip
    fields = subprocess.run(
        [TSHARK, "-r", str(out / "worker01-fabric.pcap"), "-Y", "mpls && tcp", "-T", "fields", "-e", "frame.protocols", "-e", "mpls.label", "-e", "tcp.dstport"],
        capture_output=True, text=True, check=True,
    ).stdout.split("\n")  # fmt: skip
    rows = [line.split("\t") for line in fields if line]
    assert len(rows) > 400
    assert {r[0] for r in rows} == {"eth:ethertype:ip:udp:mpls:ip:tcp"}
    drops = subprocess.run([TSHARK, "-r", str(out / "worker02-drops.pcap"), "-T", "fields", "-e", "frame.comment"], capture_output=True, text=True, check=True).stdout
    assert "NoDstRt" in drops


def vxlan_ping(tmp_path: Path, proto: str) -> Path:
    config = ClusterConfig.model_validate({"encapsulation": "VXLAN"})
    server = pod("b", nodeName="worker02")
    server["spec"]["containers"][0]["ports"] = [{"containerPort": 80}]  # 53/UDP is closed
    sim = Simulation.from_objects([pod("a", nodeName="worker01"), server], config=config)
    sim.capture = CaptureLog()
    kind, spec = ("ping", {"from": "default/a", "to": "default/b", "count": 3}) if proto == "icmp" else ("connect", {"from": "default/a", "to": "default/b", "port": 53, "protocol": "UDP"})
    run_check(sim, parse_check(kind, spec))
    write_captures(tmp_path, sim.capture.events(), [r.compiled for r in sim.fabric.runtimes])
    return tmp_path


def test_vxlan_carries_the_vni_and_an_inner_ethernet(tmp_path: Path) -> None:
    out = vxlan_ping(tmp_path, "icmp")
    seqs = []
    for _, buf in frames(out / "worker01-fabric.pcap"):
        udp = dpkt.ethernet.Ethernet(buf).data.data
        assert udp.dport == 4789
        flags, vni = udp.data[0], int.from_bytes(udp.data[4:7], "big")
        assert flags == 0x08 and vni > 0
        inner = dpkt.ethernet.Ethernet(udp.data[8:]).data
        assert_checksums(inner)
        assert isinstance(inner.data, dpkt.icmp.ICMP)
        seqs.append((inner.data.type, inner.data.data.seq))
    assert sorted(seqs) == [(0, 0), (0, 1), (0, 2), (8, 0), (8, 1), (8, 2)]


def test_a_closed_udp_port_answers_with_icmp_quoting_the_request(tmp_path: Path) -> None:
    out = vxlan_ping(tmp_path, "udp")
    packets = [dpkt.ethernet.Ethernet(b).data for _, b in frames(next(out.glob("worker01-tap*.pcap")))]
    request, error = packets
    assert_checksums(request)
    assert_checksums(error)
    assert isinstance(error.data, dpkt.icmp.ICMP) and (error.data.type, error.data.code) == (3, 3)
    quoted = error.data.data.data  # the unreach message's quoted IP header and 8 bytes
    assert (quoted.src, quoted.dst, quoted.data.sport, quoted.data.dport) == (request.src, request.dst, request.data.sport, 53)


@pytest.mark.skipif(TSHARK is None, reason="tshark not installed (CI installs it)")
def test_tshark_decodes_vxlan(tmp_path: Path) -> None:
    out = vxlan_ping(tmp_path, "icmp")
    protocols = subprocess.run([TSHARK, "-r", str(out / "worker02-fabric.pcap"), "-T", "fields", "-e", "frame.protocols", "-e", "vxlan.vni"], capture_output=True, text=True, check=True).stdout
    assert {line.split("\t")[0] for line in protocols.splitlines()} == {"eth:ethertype:ip:udp:vxlan:eth:ethertype:ip:icmp"}


def test_cli_pcap_writes_and_lists_the_files(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["ping", "default/busybox", "service/default/nginx-deployment-clusterip-service", "-f", str(CLUSTERIP), "--pcap", str(tmp_path / "caps")])
    written = sorted(p.name for p in (tmp_path / "caps").iterdir())
    assert written and all(f"pcap: {tmp_path / 'caps' / name}" in result.output for name in written)
    assert "6 packets" in result.output and all(name.startswith("worker01-tap") for name in written)  # 3 echoes and 3 replies on each


def test_cli_pcap_on_a_file_is_an_input_error(tmp_path: Path) -> None:
    taken = tmp_path / "taken"
    taken.write_text("")
    result = CliRunner().invoke(app, ["ping", "default/busybox", "default/busybox", "-f", str(CLUSTERIP), "--pcap", str(taken)])
    assert result.exit_code == 2 and "--pcap" in result.output and "not a directory" in result.output


def test_what_the_readme_says_of_its_captures(tmp_path: Path) -> None:
    """The README's connect --pcap example: the flows ECMP sent to worker02 cross worker01's
    fabric under the member's floating-IP label, and reach the member's tap DNAT'd."""
    result = CliRunner().invoke(app, ["connect", "default/busybox", "service/default/nginx-deployment-clusterip-service", "--port", "80", "--flows", "100", "-f", str(CLUSTERIP), "--pcap", str(tmp_path)])
    sim = Simulation.from_path(CLUSTERIP).build()
    ip = addresses(sim)
    remote = member_on(sim, "worker02")
    remote_count = int(result.stdout.split(remote.split("/")[1] + ":")[1].split(",")[0].split(" ")[0])
    assert remote_count == 47  # as the README shows
    labels = Counter()
    for _, buf in frames(tmp_path / "worker01-fabric.pcap"):
        udp = dpkt.ethernet.Ethernet(buf).data.data
        inner = dpkt.ip.IP(udp.data[4:])
        if inner.data.flags == dpkt.tcp.TH_SYN:
            labels[struct.unpack("!I", udp.data[:4])[0] >> 12] += 1
    assert labels == {17: 47}  # the README's label
    mpls = CliRunner().invoke(app, ["vrouter", "worker02", "mpls", "--dump", "-f", str(CLUSTERIP)]).stdout
    assert any(line.split()[0] == "17" and "via floating IP" in line for line in mpls.splitlines() if line.strip())
    tap = next(v.name for v in sim.node("worker02").vifs.values() if v.pod == remote)
    assert tap == "tap0e397e93884"  # the file the README names
    dsts = {dpkt.utils.inet_to_str(dpkt.ethernet.Ethernet(b).data.dst) for _, b in frames(tmp_path / f"worker02-{tap}.pcap")}
    assert ip[remote] in dsts and ip["vip"] not in dsts


def test_trace_writes_the_traced_packets(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["trace", "default/busybox", "ns-isolated/busybox", "-f", str(CLUSTERIP), "--pcap", str(tmp_path), "-q"])
    assert result.exit_code == 0, result.output
    (drops,) = [p for p in tmp_path.iterdir() if p.name.endswith("-drops.pcap")]
    assert comments(drops) and all("NoDstRt" in c for c in comments(drops))
