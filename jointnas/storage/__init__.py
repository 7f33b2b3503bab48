"""Storage: everything jointnas writes into an Optuna storage, and the processes sharing it.

``keys`` names every stored attribute; ``backends`` opens storages (RDB, journal files) and
stamps studies; ``layout`` is one study per stage, linked to its run; ``heartbeat`` and
``supervise`` retry the trials of dead workers; ``budget`` counts what uses up a budget;
``devices`` spreads local workers over GPUs. Imports only spaces (to rebuild a stored space)
and the root helpers.
"""
