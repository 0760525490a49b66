"""Images/s of centroid-index building at Cityscapes resolution (1024x2048).

Writes random-blob label maps (19 classes + void, ~300 shapes each) as PNGs, then builds the
index through ``SegDataset`` -- so the time includes decoding the PNG, as on real data -- in
both modes (CSST connected components, VPLR tiles) with 1 and 2 worker processes. The
one-off start-up of the worker fork server is measured separately, before the table.

    python benchmarks/bench_centroid_index.py [--images 40] [--size 1024 2048]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np

from paperlib.data.base import Sample, SegDataset
from paperlib.data.samplers import build_centroid_index, index_counts


def blob_label(h: int, w: int, rng: np.random.Generator, shapes: int = 300) -> np.ndarray:
    """A label map of random ellipses, rectangles and thin lines (poles) of 19 classes + void."""
    lab = np.zeros((h, w), np.uint8)
    lab[h // 2:] = 0      # road
    lab[: h // 3] = 10    # sky
    for _ in range(shapes):
        c = int(rng.integers(0, 19))
        y, x = int(rng.integers(0, h)), int(rng.integers(0, w))
        kind = rng.integers(0, 3)
        if kind == 0:
            axes = (int(rng.integers(3, w // 12)), int(rng.integers(3, h // 12)))
            cv2.ellipse(lab, (x, y), axes, float(rng.uniform(0, 180)), 0, 360, c, -1)
        elif kind == 1:
            cv2.rectangle(lab, (x, y), (x + int(rng.integers(4, w // 10)), y + int(rng.integers(4, h // 8))), c, -1)
        else:
            cv2.line(lab, (x, y), (x + int(rng.integers(-5, 6)), y + int(rng.integers(20, h // 4))), c, 3)
    lab[-h // 20:] = 255  # ego-vehicle void
    return lab


def make_dataset(root: Path, n: int, h: int, w: int) -> SegDataset:
    rng = np.random.default_rng(0)
    samples = []
    img = np.zeros((8, 8, 3), np.uint8)  # images are never decoded by the index
    cv2.imwrite(str(root / "img.png"), img)
    for i in range(n):
        p = root / f"lab_{i:03d}.png"
        cv2.imwrite(str(p), blob_label(h, w, rng))
        samples.append(Sample(image=root / "img.png", label=p, name=f"{i:03d}"))
    return SegDataset(samples, root=root, split="bench")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=40)
    ap.add_argument("--size", type=int, nargs=2, default=(1024, 2048))
    args = ap.parse_args()
    h, w = args.size
    with tempfile.TemporaryDirectory() as tmp:
        ds = make_dataset(Path(tmp), args.images, h, w)
        t0 = time.perf_counter()
        for i in range(len(ds)):
            ds.load_label(i)
        decode = len(ds) / (time.perf_counter() - t0)
        print(f"{args.images} label maps at {h}x{w}; PNG decode alone: {decode:.1f} images/s; "
              f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f}")
        # start the worker fork server once (a one-off cost of a few seconds per Python process)
        t0 = time.perf_counter()
        build_centroid_index(SegDataset(ds.samples[:8]), 19, workers=2, cache=False, progress=False)
        print(f"worker start-up (first parallel build only): {time.perf_counter() - t0:.1f} s\n")
        print(f"| mode       | workers | images/s | speed-up | centroids/image |")
        print(f"|------------|---------|----------|----------|-----------------|")
        for mode in ("components", "tiles"):
            base = None
            for workers in (1, 2):
                t0 = time.perf_counter()
                index = build_centroid_index(ds, 19, mode=mode, workers=workers, cache=False,
                                             progress=False)
                rate = len(ds) / (time.perf_counter() - t0)
                base = base or rate
                per_img = index_counts(index).sum() / len(ds)
                print(f"| {mode:<10} | {workers:>7} | {rate:>8.1f} | {rate / base:>7.2f}x | {per_img:>15.1f} |")


if __name__ == "__main__":
    main()
