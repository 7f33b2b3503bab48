"""Runs: the skeleton every driver shares and the search it drives.

``context`` (``RunSettings``, ``LimitSettings``, ``RunContext``: storage, data, evaluator,
limits and the stamped studies of a run, from one validated config) is the skeleton;
``pipeline`` is ``jointnas run`` (JointNAS end to end) over ``coarse`` (the coarse loop, which
``workers`` also run), ``stages`` (predictor, fine, final), ``search`` (the predictor-scored
fine search), ``calibrate`` (fidelity) and ``reward`` (MnasNet). ``supernet_search`` searches a
trained supernet with the same objective and stages. ``objective`` is the Optuna objective
all of them use. Imports: everything below (spaces ... samplers); nothing above (tools,
designs, cli).
"""
