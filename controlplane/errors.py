"""The one error type a user's mistake becomes.

Every bad input — YAML that does not parse, a misspelt field, a port out of range, a reference
to something that does not exist — is raised as :class:`InputError` carrying the file, the
field path inside the object (``spec.ports[0].port``) and, where known, the line. The CLI turns
it into exit code 2 and one message; nothing else is ever shown to the user as a traceback.
"""

from __future__ import annotations

import re
from collections.abc import Sequence


def format_path(loc: Sequence[str | int]) -> str:
    """Render a location tuple as a Kubernetes-style field path.

    >>> format_path(("spec", "ports", 0, "port"))
    'spec.ports[0].port'
    """
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


def parse_path(path: str) -> tuple[str | int, ...]:
    """The location tuple of a field path written by :func:`format_path` (for finding its line).

    >>> parse_path("spec.ports[0].nodePort")
    ('spec', 'ports', 0, 'nodePort')
    """
    return tuple(int(index) if index else name for name, index in re.findall(r"([^.\[\]]+)|\[(\d+)\]", path))


def visible(text: str) -> str:
    r"""``text`` with every invisible or control character shown as its escape (``\u200b``):
    a name quoted in a message must look different from the name it is not.

    >>> visible("no pod default/b\u200b")
    'no pod default/b\\u200b'
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() or c == " " else ("\\t" if c == "\t" else f"\\u{ord(c):04x}") for c in text)


class InputError(Exception):
    """A user mistake in a manifest, a scenario or a command-line argument."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        path: str | None = None,
        line: int | None = None,
    ) -> None:
        if "\n" in message:  # the contract is one line: a value quoted from the input may hold breaks
            message = " ".join(part.strip() for part in message.splitlines() if part.strip())
        message = visible(message)
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path
        self.line = line

    def located(self, *, file: str | None = None, line: int | None = None, path: str | None = None) -> "InputError":
        """Fill in where the mistake is, keeping what is already known."""
        if self.file is None:
            self.file = file
        if self.line is None:
            self.line = line
        if self.path is None:
            self.path = path
        return self

    def under(self, prefix: str) -> "InputError":
        """Put a field path relative to a part (``name``) under where that part is (``steps[3].delete``)."""
        self.path = f"{prefix}.{self.path}" if self.path else prefix
        return self

    def __str__(self) -> str:
        parts = []
        if self.file:
            parts.append(self.file + (f":{self.line}" if self.line is not None else ""))
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)

    def to_json(self) -> dict[str, object]:
        """The contract's error object: ``{"error", "file", "path"}`` (plus ``line``)."""
        out: dict[str, object] = {"error": self.message, "file": self.file, "path": self.path}
        if self.line is not None:
            out["line"] = self.line
        return out
