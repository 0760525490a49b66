"""``python -m paperlib evaluate``: the authors' released weights under the papers' protocols.

The parser is built without importing torch (``python -m paperlib list`` stays fast); :func:`run`
does the work through :mod:`paperlib.checkpoints.evaluate`.
"""
from __future__ import annotations

import argparse
import json
import sys
import time

FORMATS = ("paperlib", "gsvnet", "nvidia", "tusimple-duc")
MODES = ("paper", "whole", "slide", "multiscale")

EPILOG = """examples (paperlib never downloads: fetch the files first, see the README):
  python -m paperlib evaluate --format gsvnet --checkpoint weights/cityscapes-swnet-R18.pt \\
      --pf-checkpoint weights/gsvnet_swnet_r18.tar --data-root ../cityscapes
  python -m paperlib evaluate --format nvidia --checkpoint cityscapes_best.pth --data-root ../cityscapes
  python -m paperlib evaluate --format tusimple-duc --checkpoint ResNet101-DUC-7.onnx --data-root ../cityscapes

The table goes to tables/<paper>/released_weights.<profile>.{csv,md,json} (gsvnet -> gsvnet,
nvidia -> vplr, tusimple-duc -> duchdc); its manifest records every checkpoint's sha256."""


def add_parser(sub) -> argparse.ArgumentParser:
    """Add the ``evaluate`` subcommand to ``python -m paperlib``'s subparsers."""
    e = sub.add_parser("evaluate", help="evaluate the authors' released weights (converted into paperlib) "
                                        "under the papers' protocols and write 'released weights vs the paper'",
                       description="Convert a released checkpoint into paperlib's model (exactly; bad files are "
                                   "refused naming missing / unexpected keys and shape mismatches), evaluate it "
                                   "on a labelled split and write a table beside the paper's numbers.",
                       epilog=EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    e.add_argument("--checkpoint", required=True, metavar="FILE",
                   help="the released file: for gsvnet the keyframe network (cityscapes-swnet-R18.pt or "
                        "cityscapes-bisenet-R18.pth), for nvidia a DeepLabV3+ checkpoint (cityscapes_best.pth; "
                        "camvid_best.pth / kitti_best.pth load too), for tusimple-duc the ONNX model zoo's export "
                        "(ResNet101-DUC-7.onnx; needs the onnx package), for paperlib a state dict. Never "
                        "downloaded: see the README for where each release is published")
    e.add_argument("--format", required=True, choices=FORMATS, help="the checkpoint's layout")
    e.add_argument("--pf-checkpoint", metavar="FILE", default=None,
                   help="gsvnet only: the propagation framework (gsvnet_swnet_r18.tar with the SwiftNet "
                        "keyframe network, gsvnet_bisenet_r18.tar with BiSeNet); without it only the keyframe "
                        "network (interval 1) is evaluated")
    e.add_argument("--keyframe", choices=("swiftnet", "bisenet"), default=None,
                   help="gsvnet only: which keyframe network the PF was trained with (default: the PF file's "
                        "saved args, else the --checkpoint's kind)")
    e.add_argument("--model", default=None, help="paperlib format only: the registry name of the model")
    e.add_argument("--paper", default=None,
                   help="which paper's table to write (default from --format; required for paperlib)")
    e.add_argument("--dataset", default="cityscapes",
                   help="dataset layout of --data-root (default: cityscapes; see the README's 'Real data')")
    e.add_argument("--data-root", required=True, metavar="DIR", help="the dataset folder (leftImg8bit/, gtFine/ "
                   "and, for gsvnet's keyframe protocol, leftImg8bit_sequence/)")
    e.add_argument("--split", default="val", help="labelled split to evaluate (default: val)")
    e.add_argument("--mode", choices=MODES, default="paper",
                   help="inference: 'paper' = what the release's evaluation does (nvidia: sliding 1024px windows, "
                        "1/3 overlap, flip; tusimple-duc: whole image; gsvnet: the keyframe protocol), or "
                        "whole / slide / multiscale with --scales, --flip, --crop, --stride (not for gsvnet)")
    e.add_argument("--scales", type=float, nargs="+", default=None, help="multiscale: scales (default 0.5 1.0 2.0)")
    e.add_argument("--flip", action=argparse.BooleanOptionalAction, default=None,
                   help="add horizontally flipped inference (default: the protocol's)")
    e.add_argument("--crop", type=int, default=None, help="sliding-window size in pixels (slide / multiscale)")
    e.add_argument("--stride", type=int, default=None, help="sliding-window stride (default 2/3 of --crop)")
    e.add_argument("--intervals", type=int, nargs="+", default=[1, 2, 3, 4],
                   help="gsvnet: keyframe intervals l (average and minimum mIoU over the 30-frame snippets; "
                        "default 1 2 3 4)")
    e.add_argument("--conventions", choices=("release", "paperlib"), default="release",
                   help="gsvnet and nvidia: resize/padding choices where the release and paperlib differ "
                        "(default: release, which reproduces the released model's numbers); tusimple-duc "
                        "takes release only (its resizes already are paperlib's); ignored for paperlib")
    e.add_argument("--num-classes", type=int, default=None, help="classes (default: from the checkpoint, else 19)")
    e.add_argument("--width", type=int, default=None,
                   help="reduced base width the checkpoint was built with (test fixtures; default: release size)")
    e.add_argument("--max-images", type=int, default=None,
                   help="evaluate an evenly spaced subset of this many images / snippets (a quick look; the "
                        "table then says so)")
    e.add_argument("--device", default="auto", help="cpu, cuda, cuda:1, ... (default: cuda if available)")
    e.add_argument("--speed", action="store_true",
                   help="also time the model (median of 10 passes after 3 warm-up, synchronised; gsvnet: "
                        "keyframe-loop FPS per interval) on this device")
    e.add_argument("--speed-size", type=int, nargs=2, metavar=("H", "W"), default=[1024, 2048],
                   help="input size for --speed (default 1024 2048)")
    e.add_argument("--profile", default="paper", help="profile name of the written table (default: paper)")
    e.add_argument("--output-root", default=None,
                   help="where tables/ goes (default: $PAPERLIB_OUTPUT_ROOT or the repository)")
    e.add_argument("--no-table", action="store_true", help="print the results only, write no table")
    e.add_argument("--json", metavar="FILE", default=None, help="also write the rows as JSON to FILE")
    e.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True, help="show progress bars")
    return e


def run(args, parser=None) -> int:
    """Execute ``evaluate``; exit code 0, or 2 (message on stderr) for a bad checkpoint or option."""
    from . import load_released
    from ._io import CheckpointError
    from . import evaluate as E

    started = time.time()

    def fail(msg: str) -> int:
        if parser is not None:
            parser.exit(2, f"error: {msg}\n")
        print(f"error: {msg}", file=sys.stderr)
        return 2

    paper = args.paper or E.PAPER_OF.get(args.format)
    if paper is None:
        return fail("--paper is required for --format paperlib")
    try:
        device = E.resolve_device(args.device)
        main = load_released(args.checkpoint, args.format, num_classes=args.num_classes, width=args.width,
                             conventions=args.conventions, model=args.model)
        checkpoints = {main.path: main.sha256}
        rows = []
        if args.format == "gsvnet":
            if main.kind == "pf":
                return fail("for gsvnet give the keyframe network as --checkpoint and the PF file as --pf-checkpoint")
            if args.mode != "paper":
                return fail("gsvnet is evaluated with its keyframe protocol only (--mode paper)")
            pf = None
            if args.pf_checkpoint:
                pf = load_released(args.pf_checkpoint, "gsvnet", conventions=args.conventions,
                                   keyframe=args.keyframe or main.kind)
                if pf.kind != "pf":
                    return fail(f"--pf-checkpoint {args.pf_checkpoint} is a {pf.kind} network, not a PF file")
                checkpoints[pf.path] = pf.sha256
            res = E.evaluate_gsvnet(main, pf, args.data_root, args.split, args.intervals, args.max_images,
                                    args.conventions, device, args.progress, args.dataset)
            fps = E.speed_gsvnet(main, pf, args.speed_size, args.intervals, device, args.conventions) if args.speed else None
            rows = E.gsvnet_rows(main, pf, res, fps)
        else:
            protocol = dict(E.PROTOCOLS[args.format])
            if args.mode != "paper":
                protocol = {"mode": args.mode, "crop": args.crop, "stride": args.stride,
                            "flip": bool(args.flip), "scales": tuple(args.scales or (0.5, 1.0, 2.0))}
                if args.mode == "slide" and not args.crop:
                    return fail("--mode slide needs --crop")
            elif args.flip is not None:
                protocol["flip"] = args.flip
            ds = E.image_dataset(main, args.dataset, args.data_root, args.split, args.max_images)
            res = E.evaluate_image(main, ds, protocol, device, args.progress)
            fps = E.speed_image(main, args.speed_size, device)["fps"] if args.speed else None
            rows = [E.image_row(main, res, protocol, args.split, fps)]
    except (CheckpointError, FileNotFoundError, ValueError, ImportError) as e:
        return fail(str(e))
    for r in rows:
        print("  ".join(f"{k}: {v:.2f}" if isinstance(v, float) else f"{k}: {v}" for k, v in r.items()))
    if args.json:
        with open(args.json, "w", encoding="utf-8") as f:
            json.dump(rows, f, indent=1)
    if not args.no_table:
        params = {"checkpoints": checkpoints, "format": args.format, "conventions": args.conventions,
                  "dataset": args.dataset, "data_root": str(args.data_root), "split": args.split,
                  "mode": args.mode, "intervals": list(args.intervals), "max_images": args.max_images,
                  "device": str(device), "speed": bool(args.speed)}
        partial = f" Subset: {args.max_images} images/snippets only." if args.max_images else ""
        paths = E.write_released_table(paper, rows, profile=args.profile, params=params, started=started,
                                       root=args.output_root, notes=None if not partial else
                                       "Released weights converted by paperlib.checkpoints." + partial)
        for p in paths.values():
            print(f"wrote {p}")
    return 0
