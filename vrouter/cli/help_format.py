"""How ``--help`` shows options: a flag takes no value, so it shows no ``<bool>`` placeholder.

typer (0.2x) prints every option's type after its name; for a flag that reads as if it
wanted a value (``--json <bool>``). The one change is made here, at import, so every
command's help follows it.
"""

from __future__ import annotations

from typing import Any

from typer.core import TyperOption

_display_type = TyperOption.display_type_rich


def _display_type_without_flags(self: TyperOption, ctx: Any) -> str | None:
    return None if self.is_flag else _display_type(self, ctx)


TyperOption.display_type_rich = _display_type_without_flags  # type: ignore[method-assign]
