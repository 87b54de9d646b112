"""The one error type a user's mistake becomes.

Every bad input — YAML that does not parse, a misspelt field, a port out of range, a reference
to something that does not exist — is raised as :class:`InputError` carrying the file, the
field path inside the object (``spec.ports[0].port``) and, where known, the line. The CLI turns
it into exit code 2 and one message; nothing else is ever shown to the user as a traceback.
"""

from __future__ import annotations

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
        super().__init__(message)
        self.message = message
        self.file = file
        self.path = path
        self.line = line

    def located(self, *, file: str | None = None, line: int | None = None) -> "InputError":
        """Fill in where the mistake is, keeping what is already known."""
        if self.file is None:
            self.file = file
        if self.line is None:
            self.line = line
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
