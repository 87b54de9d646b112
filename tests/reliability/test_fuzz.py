"""Fuzzing the manifest loader and the scenario parser with mutated real inputs (issue 8 item 1).

The seeds are real: the article scenarios and their manifest folders, the fault scenarios and
the netpol-analyzer cases. Each example mutates one of them — bytes flipped, inserted,
deleted or cut off, or the parsed tree changed (a key dropped or renamed, a value replaced by
another type or an extreme, a list item duplicated, two values swapped, a key added) and
dumped again — and feeds it to the loader, the scenario parser and ``Cluster.apply``. The
property: the call succeeds or raises :class:`InputError` naming the file, in one line; any
other exception is a bug. Some mutated scenarios also go through ``vrsim run`` end to end.

Bounded: every test is derandomized with a fixed number of examples (the file takes about
20 s on two cores). ``--hypothesis-show-statistics`` shows how many examples got through.
"""

from __future__ import annotations

import copy
import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import event, given, settings
from hypothesis import strategies as st
from typer.testing import CliRunner

from controlplane.cluster import Cluster
from controlplane.errors import InputError
from controlplane.k8s.manifests import Source, load_paths, parse_manifest_text
from vrouter.cli.main import app
from vrouter.lab.scenario import load_scenario, parse_scenario_data
from vrouter.lab.sim import Simulation

ROOT = Path(__file__).resolve().parents[2]
ARTICLE = ROOT / "scenarios" / "article"
FAULTS = ROOT / "scenarios" / "faults"
NETPOL_CASES = ROOT / "tests" / "data" / "netpol-analyzer" / "cases"

SCENARIOS = sorted(ARTICLE.glob("*.yaml")) + sorted(FAULTS.glob("*.yaml"))
#: every manifest file, with the folder it is applied together with (its siblings)
MANIFESTS = sorted(p for p in ARTICLE.rglob("*") if p.is_file() and p.parent != ARTICLE and p.suffix in (".yaml", ".json"))
CASE_FILES = sorted(p for p in NETPOL_CASES.glob("*/input/*") if p.suffix in (".yaml", ".yml", ".json"))
SEED_MANIFESTS = MANIFESTS + CASE_FILES

#: a longer hunt: VRSIM_FUZZ_EXAMPLES=5000 (and VRSIM_FUZZ_RANDOM=1 for examples other than the suite's)
EXAMPLES = int(os.environ.get("VRSIM_FUZZ_EXAMPLES", "300"))
DERANDOMIZE = not os.environ.get("VRSIM_FUZZ_RANDOM")
FUZZ = settings(max_examples=EXAMPLES, deadline=None, derandomize=DERANDOMIZE, database=None)

#: what a careless or hostile editor puts into a file
TOKENS = [
    b": ", b"\n", b"- ", b"{", b"}", b"[", b"]", b",", b"'", b'"', b"#", b"---\n", b"\t", b"&a ", b"*a", b"<<: *a\n",
    b"!!python/object/apply:os.system ['true']", b"!!binary", b"?", b"|", b">", b"%YAML 1.1\n", b"\\u0000",
    b"\xff", b"\xc3", b"\x00", b"\xef\xbb\xbf", b"1e400", b"0x1F", b"~", b"null", b"yes", b".nan", b"-.inf",
]

#: values a structural mutation puts in place of a real one
EXTREMES: list[Any] = [
    None, True, False, 0, -1, 65536, 2**31, 10**12, -(10**18), 10**20, 1.5, float("nan"), float("inf"),
    "", "x" * 300, "ünïcödé", "10.0.0.0/40", "300.1.1.1", "../../../../etc/passwd", "*", "a/b/c/d",
    [], {}, [None], {"": None}, {"x": {"y": {"z": []}}}, ["a", 1, None], "80-70", "ns/pod:99999",
    # plausible values in the wrong place reach further than garbage does
    80, 30080, "TCP", "None", "LoadBalancer", "NodePort", "Service", "Pod", "List", "vrsim.tf/v1", "apps/v1",
    "10.0.0.0/8", "10.96.0.10", "0.0.0.0/0", "worker01", "default/busybox", "service/default/web", "external",
    "k8s-default:k8s-default-pod-network", '{"project": "k8s-default", "name": "nope"}', {"app": "web"},
    {"matchLabels": {"app": "web"}}, [{"port": 80}], {"ipBlock": {"cidr": "10.0.0.0/8"}},
]

#: keys a structural mutation adds where they may or may not belong
KEYS = [
    "hostNetwork", "nodeName", "namespace", "annotations", "labels", "clusterIP", "type", "externalIPs", "ports",
    "selector", "podSelector", "ipBlock", "generateName", "replicas", "items", "status", "expect", "apply", "delete",
    "cluster", "opencontrail.org/network", "opencontrail.org/isolation", "publicFipPool", "nodes",
]


# --- seeds and mutations -----------------------------------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the scenario folders: mutated scenarios are written next to their manifests."""
    root = tmp_path_factory.mktemp("fuzz")
    shutil.copytree(ARTICLE, root / "article")
    shutil.copytree(FAULTS, root / "faults")
    return root


def copy_of(seed: Path, workspace: Path) -> Path:
    """Where a mutated ``seed`` scenario goes: its own folder in the workspace, its manifests beside it."""
    folder = "faults" if seed.parent == FAULTS else "article"
    return workspace / folder / f"fuzzed-{seed.name}"


@st.composite
def byte_mutation(draw: st.DrawFn, data: bytes) -> bytes:
    """One to four edits of the raw bytes: flip, insert (a token or random bytes), delete, truncate."""
    for _ in range(draw(st.integers(1, 4))):
        op = draw(st.sampled_from(["flip", "insert", "delete", "truncate"]))
        at = draw(st.integers(0, len(data)))
        if op == "flip" and data:
            at = min(at, len(data) - 1)
            data = data[:at] + bytes([data[at] ^ (1 << draw(st.integers(0, 7)))]) + data[at + 1 :]
        elif op == "insert":
            piece = draw(st.one_of(st.sampled_from(TOKENS), st.binary(min_size=1, max_size=8)))
            data = data[:at] + piece + data[at:]
        elif op == "delete":
            data = data[:at] + data[at + draw(st.integers(1, 40)) :]
        else:
            data = data[:at]
    return data


def _places(tree: Any, path: tuple = ()) -> list[tuple]:
    """Every (container path, key) pair in a parsed tree."""
    out: list[tuple] = []
    if isinstance(tree, dict):
        for key, value in tree.items():
            out.append((*path, key))
            out.extend(_places(value, (*path, key)))
    elif isinstance(tree, list):
        for i, value in enumerate(tree):
            out.append((*path, i))
            out.extend(_places(value, (*path, i)))
    return out


def _get(tree: Any, path: tuple) -> Any:
    for part in path:
        tree = tree[part]
    return tree


def _rename(key: str, how: int) -> str:
    if not key:
        return "x"
    if how == 0 and len(key) > 1:
        return key[1] + key[0] + key[2:]  # transposed letters: "contaners"-style typos
    if how == 1:
        return key[:-1]
    if how == 2:
        return key + key[-1]
    return key.upper()


@st.composite
def tree_mutation(draw: st.DrawFn, docs: list[Any], edits: int = 3) -> list[Any]:
    """One to ``edits`` structural edits of parsed documents: drop, rename, replace, duplicate, swap, add."""
    docs = copy.deepcopy(docs)
    root: Any = {"docs": docs}
    for _ in range(draw(st.integers(1, edits))):
        places = _places(root["docs"], ())
        if not places:
            break
        place = draw(st.sampled_from(places))
        parent = _get(root["docs"], place[:-1])
        key = place[-1]
        op = draw(st.sampled_from(["drop", "rename", "replace", "duplicate", "swap", "add"]))
        if op == "add":
            target = _get(root["docs"], place)
            if isinstance(target, dict):
                target[draw(st.sampled_from(KEYS))] = copy.deepcopy(draw(st.sampled_from(EXTREMES)))
            elif isinstance(target, list):
                target.append(copy.deepcopy(draw(st.sampled_from(EXTREMES))))
        elif op == "drop":
            del parent[key]
        elif op == "rename" and isinstance(parent, dict):
            new = _rename(str(key), draw(st.integers(0, 3)))
            parent[new] = parent.pop(key)
        elif op == "replace":
            parent[key] = copy.deepcopy(draw(st.sampled_from(EXTREMES)))
        elif op == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif op == "swap":
            other = draw(st.sampled_from(places))
            other_parent = _get(root["docs"], other[:-1])
            try:
                parent[key], other_parent[other[-1]] = other_parent[other[-1]], parent[key]
            except (KeyError, IndexError, TypeError):  # one place was inside the other
                pass
    return root["docs"]


def dump(docs: list[Any], json_file: bool) -> bytes:
    if json_file:  # a JSON file holds one document
        return json.dumps(docs[0]).encode() if docs else b""
    return yaml.safe_dump_all(docs, sort_keys=False, allow_unicode=True).encode()


def parsed(path: Path) -> list[Any]:
    text = path.read_text(encoding="utf-8")
    if path.suffix == ".json":
        return [json.loads(text)]
    return [d for d in yaml.safe_load_all(text) if d is not None]


# --- properties --------------------------------------------------------------------------------


def assert_user_error(exc: InputError) -> None:
    """What a user sees: one line naming the file."""
    assert exc.file, f"no file in {exc!r}"
    assert exc.message and "\n" not in str(exc), repr(str(exc))


def load_and_apply(files: list[Path], mutated: Path) -> None:
    """The manifest loader and ``Cluster.apply``: success or an InputError; then the mutated
    file alone as a plain-manifest scenario (what ``vrsim get -f FILE`` reads)."""
    try:
        manifests = load_paths(files)
        Cluster().apply(manifests)
        event("applied")
    except InputError as exc:
        assert_user_error(exc)
        event("InputError")
    try:
        Simulation(load_scenario(mutated)).build()
    except InputError as exc:
        assert_user_error(exc)


def load_and_build(path: Path) -> None:
    """The scenario parser and every apply/delete step: success or an InputError."""
    try:
        Simulation(load_scenario(path)).build()
        event("built")
    except InputError as exc:
        assert_user_error(exc)
        event("InputError")


def siblings(seed: Path, mutated: Path) -> list[Path]:
    """The files applied together with ``seed`` (its folder, in name order), ``mutated`` in its place."""
    return [mutated if f == seed else f for f in sorted(seed.parent.iterdir()) if f.suffix in (".yaml", ".yml", ".json")]


@FUZZ
@given(data=st.data(), seed=st.sampled_from(SEED_MANIFESTS))
def test_manifest_bytes(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, seed: Path) -> None:
    mutated = tmp_path_factory.getbasetemp() / f"bytes-{seed.name}"
    mutated.write_bytes(data.draw(byte_mutation(seed.read_bytes())))
    load_and_apply(siblings(seed, mutated), mutated)


@FUZZ
@given(data=st.data(), seed=st.sampled_from(SEED_MANIFESTS))
def test_manifest_tree(tmp_path_factory: pytest.TempPathFactory, data: st.DataObject, seed: Path) -> None:
    docs = data.draw(tree_mutation(parsed(seed)))
    mutated = tmp_path_factory.getbasetemp() / f"tree-{seed.name}"
    mutated.write_bytes(dump(docs, seed.suffix == ".json"))
    load_and_apply(siblings(seed, mutated), mutated)
    # the same text handed straight to the parser
    try:
        parse_manifest_text(mutated.read_text(encoding="utf-8"), str(mutated))
    except InputError as exc:
        assert_user_error(exc)


@FUZZ
@given(data=st.data(), seed=st.sampled_from(SCENARIOS))
def test_scenario_bytes(workspace: Path, data: st.DataObject, seed: Path) -> None:
    mutated = copy_of(seed, workspace)
    mutated.write_bytes(data.draw(byte_mutation(seed.read_bytes())))
    load_and_build(mutated)


@FUZZ
@given(data=st.data(), seed=st.sampled_from(SCENARIOS))
def test_scenario_tree(workspace: Path, data: st.DataObject, seed: Path) -> None:
    docs = data.draw(tree_mutation(parsed(seed)))
    mutated = copy_of(seed, workspace)
    mutated.write_bytes(dump(docs, False))
    load_and_build(mutated)
    # the parsed data straight to the parser, with no YAML node to find lines in
    try:
        parse_scenario_data(docs[0] if docs else None, Source(str(mutated)))
    except InputError as exc:
        assert_user_error(exc)


# --- end to end --------------------------------------------------------------------------------

runner = CliRunner()


@settings(max_examples=max(EXAMPLES // 4, 10), deadline=None, derandomize=DERANDOMIZE, database=None)
@given(data=st.data(), seed=st.sampled_from(SCENARIOS), as_json=st.booleans())
def test_mutated_scenarios_through_vrsim_run(workspace: Path, data: st.DataObject, seed: Path, as_json: bool) -> None:
    """Mostly one structural edit, so that many runs get as far as their checks."""
    if data.draw(st.integers(0, 3)) == 0:
        text = data.draw(byte_mutation(seed.read_bytes()))
    else:
        text = dump(data.draw(tree_mutation(parsed(seed), edits=1)), False)
    mutated = copy_of(seed, workspace)
    mutated.write_bytes(text)
    result = runner.invoke(app, ["run", str(mutated), *(["--json"] if as_json else [])])
    event(f"exit {result.exit_code}")
    shown = result.stdout + result.stderr
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    assert "Traceback" not in shown and "internal error" not in shown, shown
    assert result.exit_code in (0, 1, 2), shown
    if result.exit_code == 2:
        if as_json:
            error = json.loads(result.stdout)
            assert set(error) >= {"error", "file", "path"} and error["file"], error
        else:
            assert len(result.stderr.splitlines()) == 1 and result.stderr.startswith("error: "), result.stderr
    else:
        if as_json:
            assert json.loads(result.stdout)["passed"] is (result.exit_code == 0)


def test_the_seeds_themselves_load() -> None:
    """The unmutated inputs are valid: a failure above is the mutation's doing."""
    assert len(SCENARIOS) >= 14 and len(SEED_MANIFESTS) >= 40
    for seed in SCENARIOS:
        Simulation(load_scenario(seed)).build()
    for case in sorted(NETPOL_CASES.glob("*/input")):
        Cluster().apply(load_paths([case]), strict_namespaces=False)  # a repository, read as an analyzer
