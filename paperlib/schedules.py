"""Fast training schedules: the crop size of every epoch (self-training Sec. 3.3 / Fig. 2, CSST
Sec. 3.3 / Fig. 5) and the batch size that goes with it.

The papers train at crop 800 with batch 16 for 180 epochs. Their four fast schedules visit the
crop sizes 400, 480, 560, 640, 720, 800 (``sizes``, ascending) and raise the batch size when the
crop shrinks (up to 64 at crop 400), so an epoch of small crops costs fewer pixels and fewer,
larger steps::

    crop_schedule("coarse2fine+", epochs=8, sizes=[400, 600, 800])
    # [400, 600, 800, 400, 600, 800, 400, 600]
    crop_schedule("coarse2fine", epochs=8, sizes=[400, 600, 800], warmup_epochs=2)
    # [800, 800, 400, 400, 600, 600, 800, 800]
    batch_for_crop(400, base_crop=800, base_batch=16, max_batch=64)   # 64

``paperlib.engine.train`` follows a schedule when the config sets ``crop_sizes`` (and
``crop_schedule``, ``crop_warmup_epochs``, ``crop_period``, ``batch_scaling``). This module sits
below the engine (it imports nothing of paperlib); the papers' timing harness that trains one run
per schedule is ``paperlib.selftrain.schedules.run_schedules``.
"""
from __future__ import annotations

from typing import Sequence

#: The schedules of self-training Sec. 3.3 (Fig. 2) / CSST Sec. 3.3 (Fig. 5), plus the baseline.
SCHEDULES = ("constant", "coarse2fine", "fine2coarse", "coarse2fine+", "fine2coarse+")


def crop_schedule(name: str, epochs: int, sizes: Sequence[int], warmup_epochs: int = 0,
                  period: int | None = None) -> list[int]:
    """The crop size of each of ``epochs`` epochs (a list of ``epochs`` ints).

    ``sizes`` are the square crop sizes, ascending (the papers: 400..800 in steps of 80).

    - ``constant``: the largest size every epoch (the papers' baseline, crop 800 throughout).
    - ``coarse2fine`` (ST Sec. 3.3 (1), CSST Fig. 5a): the sizes in ascending order, each held
      for ``period`` epochs ("we change the crop size every 30 epochs"); the last (largest) size
      is kept for the rest of the training. ``period=None`` splits the epochs evenly: epoch ``e``
      of ``E`` uses ``sizes[e * n // E]`` (180 epochs, 6 sizes -> 30 epochs each).
    - ``fine2coarse`` (ST Sec. 3.3 (2), CSST Fig. 5c): the same with the sizes descending, from
      the largest to the smallest, which is kept to the end.
    - ``coarse2fine+`` (ST Sec. 3.3 (3), CSST Fig. 5b): the size changes every epoch, cycling
      through the ascending sizes: epoch ``e`` uses ``sizes[e % n]`` ("400 for epoch 0, 480 for
      epoch 1, 560 for epoch 2, and so on").
    - ``fine2coarse+`` (ST Sec. 3.3 (4), CSST Fig. 5d): the reverse cycle, ``sizes[::-1][e % n]``.

    Crop-size warm-up (ST Sec. 4.3, Table 4: "a large crop size of 800 in the first 20 epochs,
    and then switch to the fast training schedules"): the first ``warmup_epochs`` epochs use the
    largest size and the schedule then runs over the remaining ``epochs - warmup_epochs`` epochs,
    starting from its own epoch 0. ``period`` only applies to coarse2fine / fine2coarse.
    """
    sizes = _check(name, epochs, sizes, warmup_epochs, period)
    n, largest = len(sizes), sizes[-1]
    rest = epochs - warmup_epochs
    order = sizes if name.startswith("coarse2fine") else sizes[::-1]
    if name == "constant":
        crops = [largest] * rest
    elif name.endswith("+"):
        crops = [order[e % n] for e in range(rest)]
    elif period is None:
        crops = [order[e * n // rest] for e in range(rest)]
    else:
        crops = [order[min(n - 1, e // period)] for e in range(rest)]
    return [largest] * warmup_epochs + crops


def batch_for_crop(crop: int, base_crop: int, base_batch: int, max_batch: int,
                   multiple_of: int = 1) -> int:
    """The batch size for square crops of side ``crop`` when ``base_batch`` goes with
    ``base_crop``: pixels per batch stay (at most) the same, ``batch = floor(base_batch *
    base_crop**2 / crop**2)``, capped at ``max_batch`` and rounded down to a multiple of
    ``multiple_of`` (the number of DDP processes), never below ``multiple_of``.

    The papers go from batch 16 at crop 800 to 64 at crop 400 (ST Sec. 4.1: "the batch size can
    increase to 64 when the crop size is smaller"): ``batch_for_crop(400, 800, 16, 64) == 64``.
    """
    for arg, value in (("crop", crop), ("base_crop", base_crop), ("base_batch", base_batch),
                       ("max_batch", max_batch), ("multiple_of", multiple_of)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"batch_for_crop: {arg} must be a positive int, got {value!r}")
    if max_batch < base_batch:
        raise ValueError(f"batch_for_crop: max_batch ({max_batch}) is smaller than base_batch "
                         f"({base_batch})")
    batch = min(max_batch, base_batch * base_crop ** 2 // crop ** 2)
    return max(multiple_of, batch - batch % multiple_of)


def relative_cost(crops: Sequence[int]) -> float:
    """Pixels processed by a schedule relative to the largest crop every epoch (same samples per
    epoch): ``mean(crop**2) / max(crop)**2``. Its inverse is the speed-up to expect when compute
    is proportional to pixels (the ideal the measured wall-clock speed-ups are compared with)."""
    if not len(crops):
        raise ValueError("relative_cost: crops is empty")
    largest = max(crops)
    return sum(c * c for c in crops) / (len(crops) * largest * largest)


def _check(name, epochs, sizes, warmup_epochs, period) -> list[int]:
    if name not in SCHEDULES:
        raise ValueError(f"crop_schedule: unknown name {name!r}; choose one of: {', '.join(SCHEDULES)}")
    if isinstance(epochs, bool) or not isinstance(epochs, int) or epochs < 1:
        raise ValueError(f"crop_schedule: epochs must be a positive int, got {epochs!r}")
    sizes = list(sizes) if not isinstance(sizes, (str, bytes)) else []
    if not sizes or any(isinstance(s, bool) or not isinstance(s, int) or s < 1 for s in sizes):
        raise ValueError(f"crop_schedule: sizes must be a non-empty list of positive ints, got {sizes!r}")
    if any(a >= b for a, b in zip(sizes, sizes[1:])):
        raise ValueError(f"crop_schedule: sizes must be strictly ascending, got {sizes}")
    if isinstance(warmup_epochs, bool) or not isinstance(warmup_epochs, int) \
            or not 0 <= warmup_epochs <= epochs:
        raise ValueError(f"crop_schedule: warmup_epochs must be an int in [0, epochs={epochs}], "
                         f"got {warmup_epochs!r}")
    if period is not None:
        if name not in ("coarse2fine", "fine2coarse"):
            raise ValueError(f"crop_schedule: period applies to coarse2fine / fine2coarse only "
                             f"({name!r} changes the crop every epoch or never), got period={period!r}")
        if isinstance(period, bool) or not isinstance(period, int) or period < 1:
            raise ValueError(f"crop_schedule: period must be a positive int, got {period!r}")
    return sizes
