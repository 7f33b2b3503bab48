"""Write a synthetic ImageFolder of RGB JPEGs (``DIR/class_k/NNNNN.jpg``) for data-path benchmarks.

The streaming loader's cost is decoding real JPEGs of a realistic size, and no ImageNet-sized
set can be shipped or downloaded here, so this script makes one: each image is a smooth colour
gradient whose direction and palette depend on the class, plus a few soft blobs at
class-dependent places (jittered per image) and mild per-pixel noise, so a network can learn the
classes and the files compress like photographs (about 10-30 KB at 256 px, quality 90) rather
than like flat colour.

Image ``i`` belongs to class ``i % classes`` and is drawn from ``numpy.random.default_rng(seed +
i)``, so any subset of the folder is reproducible on its own, and a rerun skips the files that
already exist (resumable). Each file is written under a hidden temporary name and moved into
place with ``os.replace``, so a killed run never leaves a half-written JPEG that the loader would
count as unreadable (``list_folder`` skips hidden files).

    python benchmarks/make_image_folder.py --out benchmarks/state/jpeg20k --n 20000
"""

from __future__ import annotations

import argparse
import io
import multiprocessing
import os
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np

#: side of the grid the smooth parts are computed on before upsampling (cheap, and smooth anyway)
COARSE = 64
#: soft blobs per image
BLOBS = 3


def file_path(out: Path, i: int, n: int, classes: int) -> Path:
    """Where image ``i`` of ``n`` lives: ``out/class_<k>/<i>.jpg``, zero-padded to sort."""
    width = max(5, len(str(n - 1)))
    return out / f"class_{i % classes}" / f"{i:0{width}d}.jpg"


def _class_layout(k: int, classes: int) -> tuple[np.ndarray, np.ndarray, float]:
    """The class's blob centres (BLOBS x 2, in [0, 1]), palette (3 colours) and gradient angle:
    fixed per class (seeded by ``k`` alone), so every image of a class shares them."""
    rng = np.random.default_rng(10_000 + k)
    centres = rng.uniform(0.15, 0.85, size=(BLOBS, 2))
    hue = k / classes
    palette = np.stack([_hue_rgb(hue + d) for d in (0.0, 0.33, 0.5)])
    return centres, palette, 2 * np.pi * k / classes


def _hue_rgb(h: float) -> np.ndarray:
    """A saturated colour of hue ``h`` (in turns) as RGB in [0, 1]."""
    phase = 2 * np.pi * (h + np.array([0.0, 1 / 3, 2 / 3]))
    return 0.5 + 0.45 * np.cos(phase)


def render(i: int, *, classes: int, size: int, seed: int) -> np.ndarray:
    """Image ``i`` as uint8 (size, size, 3): class ``i % classes``, randomness from seed + i."""
    from PIL import Image

    rng = np.random.default_rng(seed + i)
    centres, palette, angle = _class_layout(i % classes, classes)
    angle += rng.normal(0, 0.25)
    yy, xx = np.mgrid[0:COARSE, 0:COARSE] / (COARSE - 1)
    ramp = (np.cos(angle) * (xx - 0.5) + np.sin(angle) * (yy - 0.5)) * 1.4 + 0.5
    ramp = np.clip(ramp, 0, 1)[..., None]
    img = (1 - ramp) * palette[0] + ramp * palette[1]
    for c in centres:
        cx, cy = c + rng.normal(0, 0.06, size=2)
        radius = rng.uniform(0.06, 0.14)
        blob = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / (2 * radius**2))[..., None]
        img = img * (1 - blob) + blob * palette[2]
    img = img * rng.uniform(0.8, 1.15) + rng.normal(0, 0.04, size=3)  # brightness, colour cast
    coarse = Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8))
    big = np.asarray(coarse.resize((size, size), Image.Resampling.BICUBIC), dtype=np.int16)
    noise = rng.integers(-10, 11, size=big.shape, dtype=np.int16)  # mild sensor-like noise
    return np.clip(big + noise, 0, 255).astype(np.uint8)


def write_one(job: tuple[int, str, int, int, int, int, int]) -> int:
    """Render and write image ``i`` unless it exists; return the bytes written (0: skipped)."""
    from PIL import Image

    i, out, n, classes, size, seed, quality = job
    path = file_path(Path(out), i, n, classes)
    if path.exists():
        return 0
    buf = io.BytesIO()
    Image.fromarray(render(i, classes=classes, size=size, seed=seed)).save(
        buf, format="JPEG", quality=quality
    )
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    return len(buf.getvalue())


def _jobs(out: Path, n: int, classes: int, size: int, seed: int, quality: int) -> Iterator[tuple]:
    for i in range(n):
        yield (i, str(out), n, classes, size, seed, quality)


def make_folder(
    out: str | Path,
    *,
    n: int = 20_000,
    classes: int = 10,
    size: int = 256,
    seed: int = 0,
    quality: int = 90,
    processes: int | None = None,
    progress: bool = True,
) -> dict[str, float]:
    """Write the folder (see the module docstring); return counts, bytes and seconds.

    ``processes`` defaults to the usable CPUs (at most 8): JPEG encoding is CPU-bound and the
    images are independent, so a 2-core machine writes 20,000 in a few minutes."""
    if n < 2 * classes:
        raise ValueError(f"need at least 2 images per class for a split: n={n}, classes={classes}")
    out = Path(out)
    for k in range(classes):
        (out / f"class_{k}").mkdir(parents=True, exist_ok=True)
    if processes is None:
        cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
        processes = max(1, min(8, cpus or 1))
    from tqdm import tqdm

    written = total_bytes = 0
    t0 = time.perf_counter()
    bar = tqdm(total=n, desc=f"images -> {out}", unit="img", disable=not progress)
    jobs = _jobs(out, n, classes, size, seed, quality)
    if processes == 1:
        results: Iterator[int] = map(write_one, jobs)
        pool = None
    else:
        pool = multiprocessing.get_context("fork").Pool(processes)
        results = pool.imap_unordered(write_one, jobs, chunksize=32)
    try:
        for nbytes in results:
            written += nbytes > 0
            total_bytes += nbytes
            bar.update(1)
    finally:
        bar.close()
        if pool is not None:
            pool.close()
            pool.join()
    seconds = time.perf_counter() - t0
    return {
        "images": n,
        "written": written,
        "skipped": n - written,
        "mean_kb_written": total_bytes / max(written, 1) / 1024,
        "seconds": seconds,
    }


def ensure_folder(out: str | Path, *, n: int, size: int = 256, seed: int = 0, **kw) -> Path:
    """The folder ``out`` with ``n`` images, written first where any is missing (for the
    benchmarks, which generate their inputs on first use)."""
    out = Path(out)
    classes = kw.get("classes", 10)
    last = file_path(out, n - 1, n, classes)
    if not (last.exists() and all(file_path(out, i, n, classes).exists() for i in range(n))):
        stats = make_folder(out, n=n, size=size, seed=seed, **kw)
        print(
            f"{out}: wrote {stats['written']:.0f} images ({stats['mean_kb_written']:.1f} KB "
            f"each) in {stats['seconds']:.1f} s",
            file=sys.stderr,
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, help="folder to write (created; resumable)")
    parser.add_argument("--n", type=int, default=20_000, help="images in all (default 20000)")
    parser.add_argument("--classes", type=int, default=10)
    parser.add_argument("--size", type=int, default=256, help="side in pixels (default 256)")
    parser.add_argument("--seed", type=int, default=0, help="image i uses default_rng(seed + i)")
    parser.add_argument("--quality", type=int, default=90, help="JPEG quality (default 90)")
    parser.add_argument("--processes", type=int, default=None, help="default: usable CPUs, <= 8")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args()
    stats = make_folder(
        args.out,
        n=args.n,
        classes=args.classes,
        size=args.size,
        seed=args.seed,
        quality=args.quality,
        processes=args.processes,
        progress=not args.no_progress,
    )
    print(
        f"{args.out}: {stats['written']:.0f} written, {stats['skipped']:.0f} already there, "
        f"{stats['mean_kb_written']:.1f} KB per written image, {stats['seconds']:.1f} s"
    )


if __name__ == "__main__":
    main()
