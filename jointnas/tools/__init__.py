"""Tools: what a user does with a finished search, without training in a loop.

``export`` writes a trial's candidate and weights; ``reuse`` searches a saved predictor under
new limits in seconds (``jointnas search``/``pareto``); ``describe`` prints a candidate's parts
and costs; ``report`` tabulates a study. Imports the runs below them, never the CLI.
"""
