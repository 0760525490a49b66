"""Speed of the embedded world on ONE core, and the class-frequency table of city_a.

Measures frames/s for "frame + label + both flows" (everything ``SyntheticWorld.iter_clip``
yields, the clip's scene construction included) at 256x512 and 1024x2048, single-threaded
(OMP_NUM_THREADS=1, cv2.setNumThreads(1), torch.set_num_threads(1)). Wall time and the
process's CPU time are both reported: on a shared machine the CPU time is the fairer number.
Then prints the pixel share of every class in city_a (frames 0/10/19/29 of ``--freq-clips``
clips) next to Cityscapes' (paperlib/reference/cityscapes_class_frequency.json), as markdown.

    python benchmarks/bench_world.py [--clips 4] [--freq-clips 20] [--quick]
"""
from __future__ import annotations

import os

for _v in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_v] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

cv2.setNumThreads(1)
try:
    import torch  # noqa: E402

    torch.set_num_threads(1)
except ImportError:  # the world itself does not need torch
    pass

from paperlib.data.labels import CITYSCAPES_CLASSES  # noqa: E402
from paperlib.data.synthetic import SyntheticWorld  # noqa: E402

REF = Path(__file__).resolve().parents[1] / "paperlib" / "reference" / "cityscapes_class_frequency.json"


def speed(size, clips: int, length: int, domain: str = "city_a") -> dict:
    t0 = time.perf_counter()
    world = SyntheticWorld(domain, size)
    world.scene(10_000)  # builds the world's sprite atlas and textures once
    setup = time.perf_counter() - t0
    frames, wall, cpu, scene_wall = 0, 0.0, 0.0, 0.0
    for i in range(clips):
        w0, c0 = time.perf_counter(), time.process_time()
        world.scene(i, length)
        scene_wall += time.perf_counter() - w0
        w0, c0 = time.perf_counter(), time.process_time()
        for rec in world.iter_clip(i, length):
            frames += 1
            assert rec.frame.shape[:2] == tuple(size)
        wall += time.perf_counter() - w0
        cpu += time.process_time() - c0
    return {"size": f"{size[0]}x{size[1]}", "frames": frames, "fps_wall": frames / wall,
            "fps_cpu": frames / cpu, "ms_per_frame_cpu": 1e3 * cpu / frames,
            "scene_ms_per_clip": 1e3 * scene_wall / clips, "world_setup_s": setup}


def class_table(clips: int, size=(256, 512), domain: str = "city_a") -> str:
    world = SyntheticWorld(domain, size)
    hist = np.zeros(256)
    for i in range(clips):
        for rec in world.frames(i, [0, 10, 19, 29], length=30):
            hist += np.bincount(rec.label.ravel(), minlength=256)
    pct = 100.0 * hist / hist.sum()
    ref = json.loads(REF.read_text())
    cs = ref["percent_of_all_pixels"]
    order = np.argsort(-pct[:19])
    lines = [f"Class frequencies of {domain} ({clips} clips x 4 frames, {size[0]}x{size[1]}) vs "
             f"Cityscapes fine ({ref['source']['table'].split(',')[0]}); percent of all pixels.",
             "", "| rank | class | synthetic % | Cityscapes % | Cityscapes rank |", "|---|---|---|---|---|"]
    cs_rank = {n: r + 1 for r, n in enumerate(ref["order_by_frequency_19"])}
    for r, c in enumerate(order):
        name = CITYSCAPES_CLASSES[c]
        lines.append(f"| {r + 1} | {name} | {pct[c]:.2f} | {cs[name]:.2f} | {cs_rank[name]} |")
    lines.append(f"| - | void (ego hood) | {pct[255]:.2f} | {sum(v for k, v in cs.items() if k not in cs_rank):.2f} | - |")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--clips", type=int, default=4, help="30-frame clips timed at 256x512")
    ap.add_argument("--freq-clips", type=int, default=20)
    ap.add_argument("--quick", action="store_true", help="fewer clips (smoke run)")
    args = ap.parse_args()
    if args.quick:
        args.clips, args.freq_clips = 1, 3
    rows = [speed((256, 512), args.clips, 30), speed((1024, 2048), 1, 10 if not args.quick else 4)]
    print("## SyntheticWorld speed, one core (frame + label + instances + both flows, scene included)\n")
    print("| size | frames | fps (CPU time) | fps (wall) | ms/frame (CPU) | scene build ms/clip | world setup s |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['size']} | {r['frames']} | {r['fps_cpu']:.1f} | {r['fps_wall']:.1f} | "
              f"{r['ms_per_frame_cpu']:.1f} | {r['scene_ms_per_clip']:.0f} | {r['world_setup_s']:.1f} |")
    print(f"\ntarget: >= 50 fps at 256x512 -> {'met' if rows[0]['fps_cpu'] >= 50 else 'NOT met'}\n")
    print(class_table(args.freq_clips))


if __name__ == "__main__":
    main()
