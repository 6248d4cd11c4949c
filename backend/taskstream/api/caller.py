"""Who is asking, decided once per request (`auth.authenticate`): whose tasks it may see.

The service, the streams and the fan-out all take this one value, so "anyone" has one spelling
(`ANYONE`) and no layer re-derives it from the settings. A task keeps who submitted it as its
`owner`; a caller may see a task if it sees every task or owns it.
"""

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Caller:
    """`name`: the principal its API key (or session) stands for. None only when the API needs
    no keys: then every caller is the same one, and it sees every task."""

    name: str | None

    @property
    def sees_all(self) -> bool:
        return self.name is None

    def may_see(self, owner: str | None) -> bool:
        return self.name is None or owner == self.name


ANYONE = Caller(None)
