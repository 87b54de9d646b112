"""A benchmark's figures: a value, its unit, its target and whether it was met.

Shared by ``vrsim bench`` (:mod:`vrouter.bench`) and ``vrsim bench --startup``
(:mod:`vrouter.startup_bench`), and printed by the CLI as one table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    target: str = ""
    met: bool | None = None
    note: str = ""


@dataclass
class BenchResult:
    figures: list[Figure] = field(default_factory=list)
    numbers: dict[str, Any] = field(default_factory=dict)
    curve: list[tuple[int, float]] = field(default_factory=list)  # (active flows, Mpps)

    def add(self, name: str, value: float, unit: str, target: float | None = None, higher: bool = True, note: str = "", key: str | None = None) -> None:
        met = None
        target_text = ""
        if target is not None:
            met = value >= target if higher else value <= target
            target_text = f"{'≥' if higher else '≤'} {target:g}"
        self.figures.append(Figure(name, value, unit, target_text, met, note))
        if key:
            self.numbers[key] = value
