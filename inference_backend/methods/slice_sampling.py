"""The shared run of the 2D diffusion methods: condition, slice, sample N times, summarise.

The LR volume is normalised and interpolated onto the HR grid (B-spline: the conditioning
every network was trained with); each sample runs the method's slice model over every slice
(:mod:`inference_backend.methods.slicing`) and is projected onto the acquired data when the
``consistency`` option asks for it (:mod:`inference_backend.operators.consistency`); the mean is the HR
result, the spread the variance map.
"""
from __future__ import annotations

from collections.abc import Callable

import torch

from inference_backend.assets import build_network
from inference_backend.imaging.normalization import IntensityNormalizer
from inference_backend.imaging.resampling import resample
from inference_backend.imaging.volume import Volume
from inference_backend.methods.base import MethodRequest, MethodResult, ModelInfo
from inference_backend.methods.sample_statistics import SampleStatistics
from inference_backend.methods.slicing import (
    SliceModel,
    SlicePlan,
    head_box,
    run_slices,
)
from inference_backend.methods.variance_calibration import variance_report
from inference_backend.networks.engine import inference_engine
from inference_backend.networks.unet import ScheduledUNet
from inference_backend.operators import consistency


def load_network(request: MethodRequest, network_class: type[ScheduledUNet]) -> tuple[ScheduledUNet, ModelInfo]:
    name = request.options.model
    network, card = build_network(name, network_class.from_checkpoint)
    return network.to(request.device), ModelInfo(name, card["sha256"], card)


def acquisition_model(request: MethodRequest) -> str:
    """What the ``consistency`` option resolves to for this request's up-sampling ("none": no projection)."""
    return consistency.resolve(request.options.consistency, SlicePlan.between(request.volume.grid, request.target).coarse_axes)


def sample_slices(
    request: MethodRequest,
    slice_model_for: Callable[[torch.Generator], SliceModel],
    model: ModelInfo,
    network: ScheduledUNet,
    with_measurement: bool = False,
    context: int = 0,
) -> MethodResult:
    """``slice_model_for(generator)`` gives the slice model of one sample (seeded per sample),
    which calls ``network`` (run by the inference engine the options ask for);
    ``context``: neighbouring slices either side that a 2.5D model receives."""
    progress = request.progress
    with progress.stage("B-spline conditioning", 0.0, 0.05):
        normalizer = IntensityNormalizer.fit(request.volume.array)
        conditioning = normalizer.forward(resample(request.volume, request.target, "bspline", progress).array)
        measurement = normalizer.forward(request.volume.array)
    plan = SlicePlan.between(request.volume.grid, request.target)
    acquisition, thickness = acquisition_model(request), request.relative_thickness()
    # the head only; the acquired slices handed to the model must stay whole along a coarse axis
    box = head_box(conditioning, tuple(a for a in range(3) if not (with_measurement and a in plan.coarse_axes)))
    statistics = SampleStatistics(request.keep_samples)
    with inference_engine(network, request.options.engine, request.device) as engine:
        for sample in range(request.samples):
            generator = torch.Generator().manual_seed(request.seed * 1000 + sample)
            span = (0.05 + 0.95 * sample / request.samples, 0.05 + 0.95 * (sample + 1) / request.samples)
            with progress.stage(f"sample {sample + 1}/{request.samples}", *span):
                estimate = conditioning.copy()
                estimate[box] = run_slices(
                    conditioning[box],
                    plan,
                    slice_model_for(generator),
                    request.options.batch_size,
                    progress,
                    request.device,
                    measurement=measurement[box] if with_measurement else None,
                    context=context,
                )
                statistics.add(estimate if acquisition == "none" else consistency.project(estimate, measurement, acquisition, thickness))
    variance, resolved = statistics.variance, {"consistency": acquisition, "engine": engine}
    if variance is not None:
        calibration, resolved["variance"] = variance_report(model.card, plan, request.samples, request.options)
        if calibration is not None:
            variance = calibration.apply(variance)
    return MethodResult(
        volume=Volume(normalizer.inverse(statistics.mean), request.target),
        variance=None if variance is None else Volume(normalizer.inverse_variance(variance), request.target),
        model=model,
        samples=None if statistics.samples is None else normalizer.inverse(statistics.samples),
        resolved=resolved,
    )
