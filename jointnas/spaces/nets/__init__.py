"""The networks of the built-in spaces, each block beside its analytic cost twin.

``blocks`` holds the shared layers (conv-BN-act, inverted residual, squeeze-excite, head) and
``Cost``; ``fbnetv3``, ``anynet``, ``efficientnet`` and ``shufflenet`` build their spaces'
networks and count their FLOPs, params and activations exactly (tested against fvcore);
``network`` is the table of each architecture type's builder and cost, which ``cost`` and
``model`` (``jointnas.cost`` and ``jointnas.build_model``) read; ``layers`` lists a built
model's parts for ``describe``. Imports torch and nothing of jointnas above spaces.
"""
