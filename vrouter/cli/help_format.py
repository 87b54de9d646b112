"""How ``--help`` shows parameters: a flag takes no value, so it shows no ``<bool>``
placeholder, and an argument is described by its name and help, not ``<list[Path]>``.

typer (0.2x) prints every parameter's Python type after its name; for a flag that reads as
if it wanted a value (``--json <bool>``). The change is made here, at import, so every
command's help follows it.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperArgument, TyperOption

_display_type = TyperOption.display_type_rich


def _display_type_without_flags(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _display_type_without_flags  # type: ignore[method-assign]


def _no_argument_type(self: TyperArgument, ctx: Any) -> str | None:
    return None


TyperArgument.display_type_rich = _no_argument_type  # type: ignore[method-assign]
