"""Design-space studies: comparing and scaling spaces rather than searching one.

``edf`` (+ ``edf_analysis``) compares design spaces by the error EDFs of models sampled in a
FLOPs band (RegNet, seed 003); ``scaling`` (+ ``compound``, the arithmetic) is EfficientNet's
compound scaling of a found network (seed 004). Both are thin drivers over
``runs.context.RunContext``.
"""
