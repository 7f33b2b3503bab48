"""Which device each local worker trains on: the plan, checked without touching a GPU.

``jointnas run --workers N`` on a machine with several GPUs gives the workers one each in turn
instead of all the same; ``--devices`` names the list. Planning only parses the names (a
worker that is handed a device this machine lacks fails on its own, with one line), so the
plan is testable on a CPU-only machine with a faked GPU count.
"""

from __future__ import annotations

from collections.abc import Sequence

from jointnas.errors import ConfigError


def _parse_device(entry: str, *, option: str) -> str:
    """``entry`` as torch spells it; a ConfigError if torch does not know it. Whether the
    device exists is left to the worker that uses it (this only plans)."""
    import torch

    try:
        return str(torch.device(entry.strip()))
    except (RuntimeError, ValueError):
        raise ConfigError(f"{option}: {entry!r} is not a device (cpu, cuda, cuda:N, mps)") from None


def worker_devices(
    device: str, workers: int, *, devices: Sequence[str] | None = None, gpu_count: int = 0
) -> list[str]:
    """The ``--device`` of each of ``workers`` local workers.

    An explicit ``devices`` list is dealt out round-robin (``cuda:0,cuda:1`` and 3 workers:
    ``cuda:0, cuda:1, cuda:0``). Otherwise ``device`` ``auto`` or ``cuda`` with
    ``gpu_count > 1`` GPUs gives worker ``i`` ``cuda:(i mod gpu_count)``; any other ``device``
    (``cpu``, ``cuda:1``, ``auto`` on a machine with at most one GPU) is every worker's.
    """
    if workers < 1:
        raise ConfigError(f"--workers must be >= 1, got {workers}")
    if devices is not None:
        if isinstance(devices, str) or not devices:
            raise ConfigError(
                f"--devices needs a list of devices, e.g. cuda:0,cuda:1; got {devices!r}"
            )
        for entry in devices:
            if entry.strip() == "auto":
                raise ConfigError("--devices: 'auto' is not a device; name each (cuda:0,cuda:1)")
        chosen = [_parse_device(e, option="--devices") for e in devices]
        return [chosen[i % len(chosen)] for i in range(workers)]
    if device != "auto":
        device = _parse_device(device, option="--device")
    if device in ("auto", "cuda") and gpu_count > 1:
        return [f"cuda:{i % gpu_count}" for i in range(workers)]
    return [device] * workers


def visible_gpu_count() -> int:
    """CUDA devices this process sees (``CUDA_VISIBLE_DEVICES`` applies); 0 without CUDA."""
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0
