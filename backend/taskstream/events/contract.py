"""A script's keys and arguments, described once as a dataclass and read by the Lua into locals.

A `ScriptCall` subclass names each key (`key()`) and argument in order. `prelude()` is the Lua
that reads them into locals of the same names, and `keys_and_args()` flattens a call in that
order, so neither side depends on a position written in prose. An argument is a string, an
integer or a `Pairs` (a list of name/value pairs, sent as one JSON argument: a command's cost
in the client grows with its count of arguments, not with their length).
"""

import dataclasses
import json
from typing import Any, get_type_hints

Pairs = tuple[tuple[str, str], ...]
_KEY = "key"


def key(*, optional: bool = False) -> Any:
    """A Redis key of the script; an optional one (None: not sent) must come last."""
    if optional:
        return dataclasses.field(default=None, metadata={_KEY: True})
    return dataclasses.field(metadata={_KEY: True})


@dataclasses.dataclass(frozen=True, slots=True)
class ScriptCall:
    @classmethod
    def prelude(cls) -> str:
        prelude = _PRELUDES.get(cls)
        if prelude is None:
            prelude = _PRELUDES[cls] = _prelude(cls)
        return prelude

    def keys_and_args(self) -> tuple[list[str], list[str | int]]:
        keys: list[str] = []
        args: list[str | int] = []
        for name, is_key in _layout(type(self)):
            value = getattr(self, name)
            if is_key:
                if value is not None:
                    keys.append(value)
            elif isinstance(value, tuple):
                args.append(_compact(value))
            else:
                args.append(value)
        return keys, args


_compact = json.JSONEncoder(separators=(",", ":")).encode
_LAYOUTS: dict[type[ScriptCall], tuple[tuple[str, bool], ...]] = {}


def _layout(cls: type[ScriptCall]) -> tuple[tuple[str, bool], ...]:
    """Each field's name, and whether it is a key, in declared order (worked out once)."""
    layout = _LAYOUTS.get(cls)
    if layout is None:
        fields = dataclasses.fields(cls)
        layout = _LAYOUTS[cls] = tuple((f.name, bool(f.metadata.get(_KEY))) for f in fields)
    return layout


_PRELUDES: dict[type[ScriptCall], str] = {}


def _prelude(cls: type[ScriptCall]) -> str:
    hints = get_type_hints(cls)
    lines: list[str] = []
    keys = args = 0
    for field in dataclasses.fields(cls):
        if field.metadata.get(_KEY):
            keys += 1
            lines.append(f"local {field.name} = KEYS[{keys}]")
        else:
            args += 1
            read = f"cjson.decode(ARGV[{args}])" if hints[field.name] == Pairs else f"ARGV[{args}]"
            lines.append(f"local {field.name} = {read}")
    return "\n".join(lines) + "\n"
