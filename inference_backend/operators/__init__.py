"""The forward models of MRI acquisition: one vocabulary for degrading images (training,
evaluation, a method's adaptation) and for data consistency. The names are plain Python, for
the option lists; the operators themselves (torch) are in the modules."""

# 1D acquisition operators along one image axis (inference_backend.operators.degradation)
AXIS_OPERATORS = ("bicubic", "linear", "box", "lanczos", "kspace", "gaussian-slices", "box-slices", "sinc-slices")
# what a slice-engine method may project its samples onto (inference_backend.operators.consistency)
CONSISTENCY_CHOICES = ("auto", "none", *AXIS_OPERATORS)
