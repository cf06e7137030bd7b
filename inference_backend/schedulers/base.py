"""What every noise schedule shares: it is a frozen dataclass of its hyper-parameters, whose
values (its config) are saved with the network trained for it and rebuild it at load."""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, TypeVar

S = TypeVar("S", bound="Schedule")


@dataclass(frozen=True)
class Schedule:
    def config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls: type[S], config: dict[str, Any]) -> S:
        return cls(**config)
