"""Dense-CRF cost per frame (DUC/HDC Sec. 4.1, "+CRF": sigma_alpha 15, sigma_beta 3, sigma_gamma 1,
w1 = w2 = 3) with pydensecrf2, and two cheaper settings: fewer mean-field iterations, and the CRF
run at 1/2 or 1/4 resolution (``paperlib.crf.dense_crf(downsample=f)``).

The frame is the embedded world rendered at the requested size (1024x2048 = Cityscapes by
default); the "network" posterior is a softmax of 3 x one-hot(label) plus smooth noise (blurred
N(0, 1.5) logits), so the CRF has real colour edges and uncertain regions to work on. Each setting
is timed ``--repeat`` times (median; one thread: ``OMP_NUM_THREADS=1`` is set before import) as
process CPU seconds (what a quiet core takes; the speedups use it) and wall seconds, and its
labels are compared with the paper's setting (10 iterations, full resolution): "agree %" = pixel
agreement, "mIoU vs GT" = mIoU against the frame's true labels (the noise-only posterior's mIoU
is printed first).

    python benchmarks/duchdc_crf_cost.py [--size 1024 2048] [--classes 19] [--repeat 1] [--json]
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SETTINGS = [  # (name, iterations, downsample); the first is the paper's and the reference
    ("paper: 10 iterations, full resolution", 10, 1),
    ("5 iterations, full resolution", 5, 1),
    ("10 iterations, 1/2 resolution", 10, 2),
    ("5 iterations, 1/2 resolution", 5, 2),
    ("10 iterations, 1/4 resolution", 10, 4),
]


def frame(size, classes: int, seed: int = 0):
    """(image uint8 (H, W, 3), labels (H, W), probs (L, H, W) float32) for one world frame."""
    import cv2

    from paperlib.data.synthetic import SyntheticWorld
    rec = SyntheticWorld("city_a", size=tuple(size), seed=seed).frames(0, [0])[0]
    label = np.where(rec.label == 255, 0, rec.label).astype(np.int64) % classes
    rng = np.random.default_rng(seed)
    h, w = size
    noise = rng.normal(0, 1.5, (classes, max(1, h // 16), max(1, w // 16))).astype(np.float32)
    noise = np.stack([cv2.resize(c, (w, h), interpolation=cv2.INTER_CUBIC) for c in noise])
    logits = 3.0 * (np.arange(classes)[:, None, None] == label[None]) + noise
    e = np.exp(logits - logits.max(0, keepdims=True))
    return np.ascontiguousarray(rec.frame), label, (e / e.sum(0, keepdims=True)).astype(np.float32)


def miou(pred, truth, classes):
    ious = []
    for c in range(classes):
        inter, union = np.sum((pred == c) & (truth == c)), np.sum((pred == c) | (truth == c))
        if union:
            ious.append(inter / union)
    return 100 * float(np.mean(ious))


def run(size=(1024, 2048), classes=19, repeat=1) -> dict:
    from paperlib.crf import dense_crf
    image, truth, probs = frame(size, classes)
    out = {"size": list(size), "classes": classes, "repeat": repeat, "threads": os.environ["OMP_NUM_THREADS"],
           "load_average_1min": os.getloadavg()[0], "no_crf_miou": miou(probs.argmax(0), truth, classes),
           "settings": []}
    ref = None
    for name, iters, f in SETTINGS:
        times, cpu = [], []
        for _ in range(repeat):
            t0, c0 = time.perf_counter(), time.process_time()
            labels = dense_crf(probs, image, iterations=iters, downsample=f)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        ref = labels if ref is None else ref
        out["settings"].append({"setting": name, "iterations": iters, "downsample": f,
                                "seconds": statistics.median(times), "cpu_seconds": statistics.median(cpu),
                                "agree_pct": 100 * float((labels == ref).mean()),
                                "miou_vs_gt": miou(labels, truth, classes)})
    base = out["settings"][0]["cpu_seconds"]
    for s in out["settings"]:
        s["speedup"] = base / s["cpu_seconds"]
    return out


def report(res: dict) -> str:
    h, w = res["size"]
    lines = [f"Dense CRF on one {h}x{w} frame, {res['classes']} classes, {res['threads']} thread(s), "
             f"median of {res['repeat']} (1-min load average at start {res['load_average_1min']:.1f})",
             f"posterior without CRF: mIoU vs GT {res['no_crf_miou']:.1f}", "",
             f"{'setting':42s} {'CPU s':>7s} {'wall s':>7s} {'speedup':>8s} {'agree %':>8s} {'mIoU vs GT':>11s}"]
    for s in res["settings"]:
        lines.append(f"{s['setting']:42s} {s['cpu_seconds']:7.2f} {s['seconds']:7.2f} {s['speedup']:7.1f}x {s['agree_pct']:8.2f} "
                     f"{s['miou_vs_gt']:11.1f}")
    return "\n".join(lines)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, nargs=2, default=(1024, 2048), metavar=("H", "W"))
    ap.add_argument("--classes", type=int, default=19)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--json", action="store_true", help="print one JSON line instead of the table")
    args = ap.parse_args(argv)
    if args.classes < 2 or min(args.size) < 16 or args.repeat < 1:
        ap.error("--classes must be >= 2, --size >= 16 x 16, --repeat >= 1")
    res = run(tuple(args.size), args.classes, args.repeat)
    print(json.dumps(res) if args.json else report(res))


if __name__ == "__main__":
    main()
