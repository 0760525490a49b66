"""Evaluate released weights under each paper's protocol and write "released weights vs the paper".

Used by ``python -m paperlib evaluate`` and ``notebooks/released_weights.py``.

Protocols (``protocol="paper"``, what each release's evaluation script does):

* ``nvidia`` (VPLR): sliding 1024 x 1024 windows with 1/3 overlap, horizontal flip, scale 1.0
  (``scripts/eval_cityscapes_WideResNet38.sh``; the paper's test submission adds scales 0.5 and 2.0:
  ``--mode multiscale``);
* ``tusimple-duc`` (DUC/HDC): the whole image, one scale, no flip (``configs/test/test_full_image.cfg``);
* ``gsvnet``: the keyframe protocol of Sec. 4.1 on the 30-frame snippets (``leftImg8bit_sequence``):
  for interval l the pairs (19 - i, 19), i < l; keyframes at 0.75 through the image network, the
  others through PF; *average* mIoU pools all distances, *minimum* is distance l - 1; the image
  network alone is l = 1. Resizes follow the release's conventions (``align_corners=True``).
* ``paperlib``: whole image.

Speed (``speed=True``): :func:`paperlib.profiling.measure_latency` (median of 10 after 3 warm-up
passes, synchronised on GPU) at the evaluation resolution; for GSVNet the keyframe-loop FPS
``l / (t_key + (l - 1) t_pf)``. Numbers are for the device that ran them (recorded).
"""
from __future__ import annotations

import math
import time
from pathlib import Path
from typing import Optional, Sequence

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from paperlib.metrics import ConfusionMatrix
from paperlib.progress import tqdm

from ._io import Released

PAPER_OF = {"gsvnet": "gsvnet", "nvidia": "vplr", "tusimple-duc": "duchdc"}
TABLE_ID = "released_weights"
#: The paper's inference per release (see the module docstring); ``crop``/``stride`` in pixels.
PROTOCOLS = {
    "nvidia": {"mode": "slide", "crop": 1024, "stride": 683, "flip": True, "scales": (1.0,)},
    "tusimple-duc": {"mode": "whole", "crop": None, "stride": None, "flip": False, "scales": (1.0,)},
    "paperlib": {"mode": "whole", "crop": None, "stride": None, "flip": False, "scales": (1.0,)},
}
GSVNET_NAMES = {"swiftnet": ("SwiftNet-R18", "SN"), "bisenet": ("BiSeNet-R18", "BN")}


def describe_protocol(p: dict) -> str:
    if p["mode"] == "whole":
        s = "whole image"
    elif p["mode"] == "slide":
        s = f"sliding {p['crop']}px windows, stride {p['stride']}"
    else:
        s = f"scales {', '.join(f'{x:g}' for x in p['scales'])}" + (f", {p['crop']}px windows" if p.get("crop") else "")
    return s + (" + flip" if p["flip"] else "")


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def image_dataset(released: Released, dataset: str, data_root, split: str = "val", max_images: Optional[int] = None):
    """The labelled split, normalised as this release expects (mean/std on its pixel scale)."""
    from paperlib.data.datasets import build_dataset
    from paperlib.data.transforms import Compose, Normalize

    s = float(released.input["scale"])
    norm = Normalize([m / s for m in released.input["mean"]], [d / s for d in released.input["std"]])
    ds = build_dataset(dataset, data_root, split, Compose([norm]))
    if max_images and len(ds) > max_images:
        keep = np.linspace(0, len(ds) - 1, max_images).round().astype(int)
        ds.samples = [ds.samples[i] for i in keep]
    return ds


def evaluate_image(released: Released, ds, protocol: dict, device="cpu", progress: bool = False) -> dict:
    """mIoU (%) etc. of an image network through :func:`paperlib.engine.inference.evaluate`."""
    from paperlib.engine.inference import evaluate

    model = released.model.to(device)
    out = evaluate(model, ds, ds.num_classes, mode=protocol["mode"], scales=protocol["scales"],
                   flip=protocol["flip"], crop=protocol["crop"], stride=protocol["stride"], device=device,
                   progress=progress)
    return {"mIoU": 100 * out["miou"], "pixel accuracy": 100 * out["pixel_accuracy"], "images": len(ds),
            "per_class_iou": [100 * float(x) for x in out["per_class_iou"]]}


def _frame(ds, path, released: Released, device) -> torch.Tensor:
    from paperlib.data.base import read_image

    x = torch.from_numpy(read_image(path)).permute(2, 0, 1).float().div_(255).unsqueeze(0).to(device)
    return released.normalize(x)


@torch.no_grad()
def evaluate_gsvnet(key: Released, pf: Optional[Released], data_root, split: str = "val",
                    intervals: Sequence[int] = (1, 2, 3, 4), max_snippets: Optional[int] = None,
                    conventions: str = "release", device="cpu", progress: bool = False,
                    dataset: str = "cityscapes") -> dict:
    """GSVNet's keyframe protocol (module docstring) on ``leftImg8bit_sequence`` snippets.

    Returns ``{"by_interval": {l: {"avg_mIoU", "min_mIoU"}}, "miou_by_distance", "snippets"}`` (%).
    Without ``pf`` only l = 1 (the image network through the 1/8 grid) is evaluated."""
    from paperlib.data.datasets import build_dataset
    from paperlib.video.loop import interval_metrics, interval_pairs

    from .gsvnet import ReleaseKeyframe, set_conventions

    longest = max(intervals) if pf is not None else 1
    ds = build_dataset(dataset, data_root, split)
    idx = list(range(len(ds)))
    if max_snippets and len(idx) > max_snippets:
        idx = np.linspace(0, len(idx) - 1, max_snippets).round().astype(int).tolist()
    keyseg = ReleaseKeyframe(key.model, conventions=conventions).to(device).eval()
    if pf is not None:
        set_conventions(pf.model, conventions)
        pf.model.to(device).eval()
    pairs = interval_pairs(longest, 19)
    cms = [ConfusionMatrix(ds.num_classes) for _ in pairs]
    ac = conventions == "release"
    for i in tqdm(idx, desc="GSVNet snippets", disable=not progress):
        frames = ds.snippet(i, before=19, after=0)
        label = torch.as_tensor(ds.load_label(i)).long()
        cache = {}

        def frame(t):
            if t not in cache:
                cache[t] = _frame(ds, frames[t], key, device)
            return cache[t]
        for d, (a, b) in enumerate(pairs):
            seg = keyseg(frame(a))
            for t in range(a + 1, b + 1):
                seg = pf.model(seg, frame(t - 1), frame(t))["out"]
            pred = F.interpolate(seg, size=tuple(label.shape), mode="bilinear", align_corners=ac).argmax(1)[0]
            cms[d].update(pred.cpu(), label)
    out = {"by_interval": {}, "miou_by_distance": [100 * cm.miou() for cm in cms], "snippets": len(idx)}
    for l in sorted(set(intervals)):
        if l <= longest:
            m = interval_metrics(cms, l)
            out["by_interval"][l] = {"avg_mIoU": 100 * m["avg_miou"], "min_mIoU": 100 * m["min_miou"]}
    return out


def speed_image(released: Released, size, device) -> dict:
    from paperlib.profiling import measure_latency

    r = measure_latency(released.model, (1, 3, *size), warmup=3, repeats=10, device=str(device))
    return {"fps": r["fps"], "latency_ms": 1000 * r["median_s"]}


def speed_gsvnet(key: Released, pf: Optional[Released], size, intervals, device, conventions="release") -> dict:
    """Keyframe step (0.75 input -> 1/8 grid) and one PF step timed; FPS per interval."""
    from paperlib.profiling import measure_latency
    from paperlib.video.gsvnet import interval_fps

    from .gsvnet import ReleaseKeyframe

    keyseg = ReleaseKeyframe(key.model, conventions=conventions).to(device)
    t_key = measure_latency(keyseg, (1, 3, *size), warmup=3, repeats=10, device=str(device))["median_s"]
    out = {1: 1.0 / t_key}
    if pf is not None:
        h, w = size

        class Step(torch.nn.Module):
            def __init__(self):
                super().__init__()
                self.pf = pf.model
                self.register_buffer("seg", torch.zeros(1, pf.model.num_classes, h // 8, w // 8))

            def forward(self, x):
                return self.pf(self.seg, x, x)["out"]
        t_pf = measure_latency(Step(), (1, 3, h, w), warmup=3, repeats=10, device=str(device))["median_s"]
        out.update({l: interval_fps(t_key, t_pf, l) for l in intervals if l > 1})
    return out


# --- the table -------------------------------------------------------------------------------------
def gsvnet_rows(key: Released, pf: Optional[Released], result: dict, fps: Optional[dict] = None) -> list[dict]:
    name, short = GSVNET_NAMES.get(key.kind, (key.kind, key.kind))
    rows = []
    for l, m in result["by_interval"].items():
        row = {"row": f"{name} (0.75)" if l == 1 else f"Ours-{short}-R18 (l={l})",
               "checkpoint": Path(key.path).name + ("" if l == 1 or pf is None else f" + {Path(pf.path).name}"),
               "sha256": key.sha256[:16] + ("" if l == 1 or pf is None else f" + {pf.sha256[:16]}"),
               "inference": "keyframe 0.75 -> 1/8 grid" + ("" if l == 1 else f", interval {l}"),
               "avg mIoU": m["avg_mIoU"], "min mIoU": m["min_mIoU"], "snippets": result["snippets"]}
        if fps:
            row["FPS"] = fps.get(l, math.nan)
        rows.append(row)
    return rows


def image_row(released: Released, result: dict, protocol: dict, split: str, fps: Optional[float] = None) -> dict:
    names = {("nvidia", "wrn38"): "WideResNet38 DeepLabV3+", ("nvidia", "seresnext50"): "SE-ResNeXt-50 DeepLabV3+",
             ("tusimple-duc", "resnet101_duc_hdc"): "ResNet101-DUC-HDC"}
    row = {"row": f"{names.get((released.format, released.kind), released.kind)}, {split}, {describe_protocol(protocol)}",
           "checkpoint": Path(released.path).name, "sha256": released.sha256[:16],
           "inference": describe_protocol(protocol), "mIoU": result["mIoU"], "images": result["images"]}
    if fps is not None:
        row["FPS"] = fps
    return row


#: Why a paper's released-weights table tests nothing (no declared check for it).
RELEASED_DESCRIBES = {
    "vplr": ("and the paper gives no held-out number to compare them with: the released "
             "cityscapes_best.pth was trained on the cv2 split (val cities included) for the test "
             "submission, whose 83.5 needs the test server"),
}


def released_claims(paper: str, table: pd.DataFrame):
    """The declared ``released_weights`` checks of ``paper`` (``paperlib/reference/claims/<paper>.toml``)
    whose rows ``table`` has, evaluated: a check passes when ``|ours - paper| <= value`` (its
    declared tolerance). Returns the ``ClaimResult`` list, or a string (the table only describes)
    when no declared row was measured."""
    from paperlib import claims as C

    declared = [c for c in C.declared(paper) if c.item == TABLE_ID]
    checks, chosen = {}, []
    for c in declared:
        rows = table[table["row"].astype(str) == str(c.a)] if "row" in table else table.iloc[0:0]
        if rows.empty or c.metric not in rows or c.paper_effect is None:
            continue
        ours = float(rows[c.metric].iloc[0])
        delta = ours - c.paper_effect
        ok = math.isfinite(ours) and abs(delta) <= c.value
        checks[c.id] = (ok, f"ours {ours:.2f} vs paper {c.paper_effect:.2f}: Δ {delta:+.2f} "
                            f"({'within' if ok else 'outside'} the declared ±{c.value:g})")
        chosen.append(c)
    if not chosen:
        note = RELEASED_DESCRIBES.get(paper, "no declared row of this paper was evaluated")
        return f"released weights evaluated, {note}"
    return C.evaluate(chosen, checks=checks)


def write_released_table(paper: str, rows: list[dict], *, profile: str, params: dict, started=None, root=None,
                         notes: Optional[str] = None) -> dict:
    """``tables/<paper>/released_weights.<profile>.*`` with the paper's numbers and the checks."""
    from paperlib.repro import write_table

    table = pd.DataFrame(rows)
    results = released_claims(paper, table)
    value_cols = [c for c in ("mIoU", "avg mIoU", "min mIoU", "FPS") if c in table]
    return write_table(table, paper, TABLE_ID, profile=profile, params=params, started=started or time.time(),
                       root=root, reference=True, by=["row"], value_cols=value_cols, claims=results,
                       notes=notes or "Released weights converted by paperlib.checkpoints, evaluated under the "
                                      "protocol named in the inference column; checkpoint sha256 in the manifest.")
