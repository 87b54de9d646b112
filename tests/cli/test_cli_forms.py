"""One flag style everywhere, and the forms users of the vRouter tools and netpol-analyzer type."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from vrouter.cli.main import app

ARTICLE = Path(__file__).resolve().parents[2] / "scenarios" / "article"
CLUSTERIP = str(ARTICLE / "clusterip-service.yaml")
POLICY = str(ARTICLE / "network-policy.yaml")
runner = CliRunner()
COMMANDS = typer.main.get_command(app).commands  # type: ignore[attr-defined]


def invoke(*args: str, columns: int = 100) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": str(columns)})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_option_has_help_and_no_flag_shows_a_placeholder(name: str) -> None:
    command = COMMANDS[name]
    assert [p.name for p in command.params if not getattr(p, "help", None)] == []
    code, out, _ = invoke(name, "-h")
    assert code == 0 and "Usage: vrsim" in out
    assert "<bool>" not in out and "…" not in out


def test_completion_is_on() -> None:
    code, out, _ = invoke("--help")
    assert code == 0 and "--install-completion" in out


@pytest.mark.parametrize(
    "args",
    [
        ["run", CLUSTERIP],
        ["ping", "default/busybox", "ns-isolated/busybox", "-f", str(ARTICLE / "namespace-isolation.yaml")],
        ["connect", "default/busybox", "service/default/nginx-deployment-clusterip-service", "-f", CLUSTERIP],
        ["trace", "default/busybox", "service/default/nginx-deployment-clusterip-service", "-p", "80", "-f", CLUSTERIP],
        ["reach", "-f", CLUSTERIP],
        ["vrouter", "worker01", "nh", "-f", CLUSTERIP],
    ],
    ids=["run", "ping", "connect", "trace", "reach", "vrouter"],
)
def test_o_json_and_json_are_one_choice(args: list[str]) -> None:
    _, long_form, _ = invoke(*args, "--json")
    _, short_form, _ = invoke(*args, "-o", "json")
    assert json.loads(long_form) == json.loads(short_form)


def test_run_takes_f_like_every_command() -> None:
    code, out, _ = invoke("run", "-f", CLUSTERIP, "-o", "json")
    assert code == 0 and json.loads(out)["scenarios"][0]["name"] == "clusterip-service"
    code, _, err = invoke("run")
    assert code == 2 and "nothing to run" in err


@pytest.mark.parametrize(
    ("tool_args", "first_words"),
    [
        (["vif", "--list"], "Vrouter Interface Table"),
        (["vif", "--get", "3"], "Vrouter Interface Table"),
        (["rt", "--dump", "1", "--family", "inet"], "Vrouter inet4 routing table 0/1/unicast"),
        (["nh", "--list"], "Id:0"),
        (["mpls", "--dump"], "MPLS Input Label Map"),
        (["flow", "-l"], "Flow table"),
        (["dropstats"], ""),
    ],
)
def test_vrouter_tool_forms(tool_args: list[str], first_words: str) -> None:
    code, out, err = invoke("vrouter", "worker01", *tool_args, "-f", CLUSTERIP)
    assert code == 0, err
    assert out.lstrip().startswith(first_words)


def test_vif_get_and_nh_get_show_one() -> None:
    _, out, _ = invoke("vrouter", "worker01", "vif", "--get", "3", "-f", CLUSTERIP)
    assert out.count("vif0/") == 1 and "vif0/3 " in out
    nexthops = json.loads(invoke("vrouter", "worker01", "nh", "-o", "json", "-f", CLUSTERIP)[1])
    composite = next(n["id"] for n in nexthops if n["type"] == "COMPOSITE")
    _, out, _ = invoke("vrouter", "worker01", "nh", "--get", str(composite), "-f", CLUSTERIP)
    assert out.startswith(f"Id:{composite} ") and "Type:Composite" in out and out.count("Id:") == 1
    code, _, err = invoke("vrouter", "worker01", "rt", "--family", "inet6", "-f", CLUSTERIP)
    assert code == 2 and "only inet" in err


def test_connlist_netpol_analyzer_forms(tmp_path: Path) -> None:
    _, everything, _ = invoke("connlist", "--dirpath", POLICY)
    code, focused, _ = invoke("connlist", "-f", POLICY, "--focusworkload", "backend")
    assert code == 0 and focused
    lines = focused.splitlines()
    assert set(lines) < set(everything.splitlines()) and all("shop/backend[" in l for l in lines)
    out_file = tmp_path / "conns.csv"
    code, printed, _ = invoke("connlist", "-f", POLICY, "-o", "csv", "--file", str(out_file))
    assert code == 0 and printed == "" and out_file.read_text().splitlines()[0] == "src,dst,conn"
    _, dot, _ = invoke("connlist", "-f", POLICY, "-o", "dot")
    assert dot.startswith("digraph {") and dot.count(" -> ") == len(everything.splitlines())
    assert '"shop/backend[Pod]" -> "shop/db[Pod]" [label="TCP 5432"' in dot


def test_bench_plot_without_the_plot_extra_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)  # as if not installed
    code, out, err = invoke("bench", "--quick", "--plot", str(tmp_path / "curve.png"))
    assert code == 2 and 'pip install "vrsim[plot]"' in err + out
    assert not (tmp_path / "curve.png").exists()


def test_the_core_install_needs_neither_scipy_nor_matplotlib() -> None:
    import tomllib

    project = tomllib.loads((ARTICLE.parents[1] / "pyproject.toml").read_text())["project"]
    core = " ".join(project["dependencies"]).lower()
    assert "scipy" not in core and "matplotlib" not in core
    assert any("matplotlib" in d for d in project["optional-dependencies"]["plot"])
