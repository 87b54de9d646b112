"""Results as tables in notebooks and as plain records for pandas.

A result class defines ``columns`` and ``records()`` (one dict per row); :class:`Tabular`
turns that into ``_repr_html_`` (Jupyter draws it as a table) and nothing else — pandas users
write ``pandas.DataFrame(result.records())``, and vrsim needs no pandas.
"""

from __future__ import annotations

import html
from typing import Any


def html_table(columns: list[str], records: list[dict[str, Any]], caption: str = "") -> str:
    """An HTML table of records (values escaped; missing ones empty).

    >>> html_table(["a", "b"], [{"a": 1, "b": "<x>"}], "two")
    '<table><caption>two</caption><thead><tr><th>a</th><th>b</th></tr></thead><tbody><tr><td>1</td><td>&lt;x&gt;</td></tr></tbody></table>'
    """
    head = "".join(f"<th>{html.escape(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns) + "</tr>" for r in records)
    title = f"<caption>{html.escape(caption)}</caption>" if caption else ""
    return f"<table>{title}<thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {v}" for k, v in value.items())
    if isinstance(value, list | tuple):
        return ", ".join(str(v) for v in value)
    return str(value)


class Tabular:
    """Mixin: ``_repr_html_`` from ``columns``, ``records()`` and ``caption``."""

    columns: list[str]

    @property
    def caption(self) -> str:
        return ""

    def records(self) -> list[dict[str, Any]]:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return html_table(list(self.columns), self.records(), self.caption)
