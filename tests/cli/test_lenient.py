"""--lenient reads a repository as an analyzer must; without it the same input stays an error."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from vrouter.cli.main import app

POD = """
apiVersion: v1
kind: Pod
metadata: {name: web-1, labels: {app: web}}
spec: {containers: [{name: c, image: nginx}]}
"""

PROBLEMS = {
    "unnamed-ports": (
        "apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {selector: {app: web}, ports: [{port: 80}, {port: 443}]}\n",
        "every port needs a name when a service has several",
    ),
    "underscore-name": (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: allow_web}\nspec: {podSelector: {}}\n",
        "invalid name 'allow_web'",
    ),
    "owner-without-uid": (
        "apiVersion: v1\nkind: Pod\nmetadata:\n  name: web-2\n  ownerReferences: [{kind: ReplicaSet, name: web-abc, controller: true}]\n"
        "spec: {containers: [{name: c, image: nginx}]}\n",
        "has no apiVersion and no uid",
    ),
    "null-pod-selector": (
        "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: deny}\nspec:\n  podSelector:\n  policyTypes: [Ingress]\n",
        "spec.podSelector is required",
    ),
}


def folder(tmp_path: Path, problem: str) -> Path:
    (tmp_path / "pod.yaml").write_text(textwrap.dedent(POD))
    if problem == "stray-file":
        (tmp_path / "settings.json").write_text('{"replicas": 3}')
    else:
        (tmp_path / "problem.yaml").write_text(PROBLEMS[problem][0])
    return tmp_path


WORDS = {**{k: v[1] for k, v in PROBLEMS.items()}, "stray-file": "object has no kind"}


@pytest.mark.parametrize("command", [["connlist"], ["reach"], ["get", "pods"]])
@pytest.mark.parametrize("problem", sorted(WORDS))
def test_each_problem_is_an_error_without_lenient_and_a_warning_with_it(tmp_path: Path, command: list[str], problem: str) -> None:
    path = str(folder(tmp_path, problem))
    runner = CliRunner()
    strict = runner.invoke(app, [*command, "-f", path])
    said = "ownerReferences[0].apiVersion: required field is missing" if problem == "owner-without-uid" else WORDS[problem]
    assert strict.exit_code == 2 and said in strict.stderr and "warning" not in strict.stderr
    relaxed = runner.invoke(app, [*command, "-f", path, "--lenient"])
    assert relaxed.exit_code == 0, relaxed.output
    warnings = [l for l in relaxed.stderr.splitlines() if l.startswith("warning: ")]
    assert warnings and WORDS[problem] in warnings[0] and "--lenient" in warnings[0]


def test_lenient_reading_changes_what_a_null_pod_selector_means_to_every_pod(tmp_path: Path) -> None:
    path = str(folder(tmp_path, "null-pod-selector"))
    result = CliRunner().invoke(app, ["connlist", "-f", path, "--lenient", "--intent"])
    assert result.exit_code == 0
    assert not any("=> default/web-1" in line and "External" in line for line in result.stdout.splitlines())  # ingress denied


def test_other_problems_stay_errors(tmp_path: Path) -> None:
    (tmp_path / "bad.yaml").write_text("apiVersion: v1\nkind: Service\nmetadata: {name: web}\nspec: {ports: [{port: 99999}]}\n")
    result = CliRunner().invoke(app, ["connlist", "-f", str(tmp_path), "--lenient"])
    assert result.exit_code == 2 and "99999" in result.stderr
