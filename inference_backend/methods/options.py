"""Typed method options: each method declares its options as a frozen dataclass beside its code,
and everything that shows or checks them (the registry, ``mrisr methods``, the CLI's ``--opt``,
the Slicer logic, ``report.json``) reads that one declaration.

Plain Python (no torch): the Slicer module imports the registry, hence these, at start-up.

    @dataclass(frozen=True)
    class MyOptions(MethodOptions):
        steps: int = option(10, "network calls", minimum=1)

    MyOptions.parse({"steps": "4"}).steps == 4
"""
from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from typing_extensions import Self

from inference_backend.errors import InputError
from inference_backend.operators import CONSISTENCY_CHOICES

T = TypeVar("T", bound="MethodOptions")


def option(
    default: Any,
    help: str,
    *,
    choices: tuple[Any, ...] | None = None,
    minimum: float | None = None,
    maximum: float | None = None,
    number: type | None = None,
):
    """A dataclass field with what users are told about it and what values it accepts;
    ``number`` (int or float) with the default "auto": "auto" or a number of that type."""
    metadata = {"help": help, "choices": choices, "minimum": minimum, "maximum": maximum, "number": number}
    return dataclasses.field(default=default, metadata=metadata)


@dataclass(frozen=True)
class OptionInfo:
    """One option as users see it; its type is the type of ``default``."""

    name: str
    default: Any
    help: str
    choices: tuple[Any, ...] | None = None
    minimum: float | None = None
    maximum: float | None = None
    number: type | None = None  # with the default "auto": "auto" or a number of this type

    def parse(self, value: Any) -> Any:
        """Convert (from text, for the command line) and check; errors name the option."""
        if self.number is not None and value == "auto":
            return value
        kind = self.number or type(self.default)
        try:
            if kind is bool and isinstance(value, str):
                if value.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(value)
                parsed: Any = value.lower() in {"true", "1", "yes"}
            else:
                parsed = kind(value)
        except (TypeError, ValueError) as error:
            raise InputError(f"option {self.name}: expected {kind.__name__}, got {value!r}") from error
        if self.choices is not None and parsed not in self.choices:
            raise InputError(f"option {self.name}: {parsed!r} is not one of {', '.join(map(str, self.choices))}")
        if self.minimum is not None and parsed < self.minimum:
            raise InputError(f"option {self.name}: {parsed} is below the minimum {self.minimum}")
        if self.maximum is not None and parsed > self.maximum:
            raise InputError(f"option {self.name}: {parsed} is above the maximum {self.maximum}")
        return parsed


@dataclass(frozen=True)
class MethodOptions:
    """Base of every method's options."""

    @classmethod
    def describe(cls) -> tuple[OptionInfo, ...]:
        return tuple(
            OptionInfo(field.name, field.default, **field.metadata) for field in dataclasses.fields(cls)
        )

    @classmethod
    def parse(cls, given: Mapping[str, Any], owner: str = "this method") -> Self:
        """Defaults overridden by ``given`` (text or values), each checked; unknown names refused."""
        known = {info.name: info for info in cls.describe()}
        unknown = sorted(set(given) - set(known))
        if unknown:
            raise InputError(f"{owner} has no option {', '.join(unknown)}; its options: {', '.join(known) or 'none'}")
        return cls(**{name: known[name].parse(value) for name, value in given.items()})

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


MODEL_HELP = "model name (bundled, or in the user models folder; default: the method's bundled model)"
ENGINES = ("auto", "onnxruntime", "pytorch")  # inference_backend.networks.engine


@dataclass(frozen=True)
class SliceMethodOptions(MethodOptions):
    """The options every slice-engine method has: which weights, slices per call, data consistency."""

    model: str = option("", MODEL_HELP)
    batch_size: int = option(8, "slices per network call", minimum=1, maximum=256)
    consistency: str = option(
        "auto",
        "project each sample onto the acquired scan through this acquisition model "
        "(auto: kspace for in-plane up-sampling of two axes, none for thick slices)",
        choices=CONSISTENCY_CHOICES,
    )
    engine: str = option(
        "auto",
        "what runs the network at inference (auto: ONNX Runtime on a CPU where installed, checked against "
        "PyTorch on every load; PyTorch elsewhere and for gradients)",
        choices=ENGINES,
    )
    variance: str = option(
        "calibrated",
        "the variance map of several samples: calibrated (scaled as the model card's calibration says for the "
        "nearest calibrated sample count and factor, where it has one for this acquisition) or raw (the samples' spread as it is)",
        choices=("calibrated", "raw"),
    )


LESION_FILLS = ("neighbourhood", "nawm-mean", "inverse-sr")  # inference_backend.methods.lesion_fill.FILLS
