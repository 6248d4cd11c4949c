"""A script call's dataclass and the Lua that reads it: each name gets its own value back."""

from dataclasses import dataclass

import redis

from taskstream.events.contract import Pairs, ScriptCall, key


@dataclass(frozen=True, slots=True, kw_only=True)
class Call(ScriptCall):
    first: str = key()
    name: str
    count: int
    pairs: Pairs
    after: str
    more: Pairs
    last: str
    extra: str | None = key(optional=True)


ECHO = """
local flat = {}
for _, pair in ipairs(pairs) do flat[#flat + 1] = pair[1] .. '=' .. pair[2] end
local also = {}
for _, pair in ipairs(more) do also[#also + 1] = pair[1] .. '=' .. pair[2] end
return {first, extra or false, name, count, table.concat(flat, ','), after,
  table.concat(also, ','), last}
"""


def call(**changes: object) -> Call:
    values: dict[str, object] = {
        "first": "k1",
        "name": "n",
        "count": 3,
        "pairs": (("a", "1"), ("b", "")),
        "after": "x",
        "more": (),
        "last": "end",
    }
    return Call(**(values | changes))  # type: ignore[arg-type]


def run(client: "redis.Redis", value: Call) -> list[object]:
    keys, args = value.keys_and_args()
    reply: list[object] = client.eval(Call.prelude() + ECHO, len(keys), *keys, *args)
    return reply


def test_each_argument_reaches_the_lua_under_its_name(client: "redis.Redis") -> None:
    assert run(client, call()) == ["k1", None, "n", "3", "a=1,b=", "x", "", "end"]
    with_key = call(extra="k2", more=(("c", "3"),), pairs=())
    assert run(client, with_key) == ["k1", "k2", "n", "3", "", "x", "c=3", "end"]


def test_a_call_flattens_in_declared_order() -> None:
    assert call(extra="k2").keys_and_args() == (
        ["k1", "k2"],
        ["n", 3, '[["a","1"],["b",""]]', "x", "[]", "end"],
    )
