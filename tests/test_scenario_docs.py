"""docs/scenarios.md is the users' contract: it must name everything the format has."""

from __future__ import annotations

import re
from pathlib import Path

from controlplane.config import ClusterConfig, NodeConfig, VRouterSettings
from vrouter.dataplane.packets import DROP_REASONS
from vrouter.lab.scenario import STEP_KINDS, ConnectSpec, ExpectSpec, HttpSpec, PingSpec

DOC = (Path(__file__).resolve().parents[1] / "docs" / "scenarios.md").read_text()
CODE_WORDS = set(re.findall(r"`([^`\n]+)`", re.sub(r"```.*?```", "", DOC, flags=re.S)))  # inline code
MENTIONED = {w for text in CODE_WORDS for w in re.split(r"[\s:.,{}\[\]|/]+", text) if w}


def aliases(model: type) -> set[str]:
    return {f.alias or name for name, f in model.model_fields.items()}


def test_every_step_expect_key_and_check_field_is_documented() -> None:
    missing = (set(STEP_KINDS) | aliases(ExpectSpec) | aliases(PingSpec) | aliases(ConnectSpec) | aliases(HttpSpec)) - MENTIONED
    assert not missing, missing


def test_every_cluster_setting_is_documented() -> None:
    missing = (aliases(ClusterConfig) | aliases(NodeConfig) | aliases(VRouterSettings)) - MENTIONED
    assert not missing, missing


def test_every_drop_reason_is_documented() -> None:
    missing = {r for r in DROP_REASONS if r} - CODE_WORDS
    assert not missing, missing


def test_every_observed_field_is_documented() -> None:
    fields = set(re.findall(r'observed\["(\w+)"\]', (Path(__file__).resolve().parents[1] / "vrouter" / "lab" / "checks.py").read_text()))
    fields |= set(re.findall(r'^\s+"(\w+)":', (Path(__file__).resolve().parents[1] / "vrouter" / "lab" / "checks.py").read_text(), re.M))
    fields |= set(re.findall(r"observed\.update\((\w+)=", (Path(__file__).resolve().parents[1] / "vrouter" / "lab" / "checks.py").read_text()))
    missing = fields - MENTIONED
    assert fields and not missing, missing
