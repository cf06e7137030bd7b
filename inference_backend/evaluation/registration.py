"""Registration by Mattes mutual information (SimpleITK), initialised at the centres of mass
and refined coarse to fine, the same transform every run: the metric's random samples drawn
with a fixed seed, and one thread (threads sum the metric and the pyramid's filters in a
varying order, and 200 optimiser steps grow those last-bit differences into another transform).
Shared by the atlas brain masks (affine) and the two-visit comparisons (rigid)."""
from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np
import SimpleITK as sitk

from inference_backend.imaging.itk import to_sitk
from inference_backend.imaging.volume import Volume

SAMPLING_SEED = 1  # the metric's random samples; SimpleITK reads 0 as "seed from the wall clock"


def register(fixed: Volume, moving: Volume, transform: sitk.Transform, histogram_bins: int) -> sitk.Transform:
    """The ``transform`` (its kind: Euler3D, affine, ...) mapping ``fixed``'s physical points
    onto ``moving`` (ITK's convention)."""
    fixed_image, moving_image = to_sitk(fixed, np.float32), to_sitk(moving, np.float32)
    initial = sitk.CenteredTransformInitializer(fixed_image, moving_image, transform, sitk.CenteredTransformInitializerFilter.MOMENTS)
    method = sitk.ImageRegistrationMethod()
    method.SetMetricAsMattesMutualInformation(numberOfHistogramBins=histogram_bins)
    method.SetMetricSamplingStrategy(method.RANDOM)
    method.SetMetricSamplingPercentage(0.05, SAMPLING_SEED)
    method.SetInterpolator(sitk.sitkLinear)
    method.SetOptimizerAsRegularStepGradientDescent(learningRate=1.0, minStep=1e-4, numberOfIterations=200)
    method.SetOptimizerScalesFromPhysicalShift()
    method.SetShrinkFactorsPerLevel([4, 2, 1])
    method.SetSmoothingSigmasPerLevel([2.0, 1.0, 0.0])
    method.SmoothingSigmasAreSpecifiedInPhysicalUnitsOn()
    method.SetInitialTransform(initial, inPlace=False)
    with single_threaded():
        return method.Execute(fixed_image, moving_image)


@contextmanager
def single_threaded() -> Iterator[None]:
    """SimpleITK on one thread for the duration."""
    threads = sitk.ProcessObject.GetGlobalDefaultNumberOfThreads()
    sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    try:
        yield
    finally:
        sitk.ProcessObject.SetGlobalDefaultNumberOfThreads(threads)
