"""What every noise schedule shares.

A :class:`Schedule` is a frozen dataclass of its hyper-parameters, whose values (its config)
are saved with the network trained for it and rebuild it at load. A :class:`Scheduler` is one
sampling run over it, with the interface of diffusers' and MONAI's schedulers:
``set_timesteps(count)``, then ``step(model_output, t, sample)`` for each ``t`` of
``timesteps``, from the first to the last; ``add_noise`` draws the forward process for training.
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    import torch

S = TypeVar("S", bound="Schedule")


@dataclass(frozen=True)
class Schedule:
    def config(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_config(cls: type[S], config: dict[str, Any]) -> S:
        return cls(**config)


class Scheduler(ABC):
    """One run of a schedule's reverse process."""

    timesteps: Sequence[int]  # the steps of the reverse process, in the order they are taken

    @abstractmethod
    def set_timesteps(self, num_inference_steps: int) -> None:
        """Choose the steps the reverse process takes (``timesteps``)."""

    @abstractmethod
    def step(self, model_output: torch.Tensor, timestep: int, sample: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """The sample one step further along the reverse process, from what the network
        predicted at ``timestep`` (what it predicts is the schedule's: x0, the noise, the score)."""

    @abstractmethod
    def add_noise(self, original: torch.Tensor, noise: torch.Tensor, timesteps: torch.Tensor, **conditioning: torch.Tensor) -> torch.Tensor:
        """A draw of the forward process at ``timesteps`` (one per batch element), for training."""
