"""The billboard library: vehicles, people, two-wheelers and street furniture as textured cut-outs.

Every object of the world is a vertical planar sprite facing the street axis (2.5D): vehicles and
people moving along the street show their rear or front, crossing ones their side (mirrored by
direction). A sprite is an RGB texture with a per-texel fine label (255 = transparent), drawn in
metres with ``Canvas``; thin parts (poles 8-16 cm, bicycle wheels, sign posts) are real thin
structures in the images and labels. Built once per (domain, seed) and cached.
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from .classes import F, FINE_CLASSES as FINE_NAMES, FINE_TO_TRAINID, THING_TRAINIDS
from .domains import Domain, get_domain
from .textures import Canvas, RipMap, scale_color

GLASS_REAR = (38, 44, 52)
TIRE = (26, 26, 28)
DARK = (44, 44, 48)
RED = (196, 28, 24)
SKIN = ((224, 182, 150), (190, 140, 104), (140, 96, 66), (238, 204, 176))
HAIR = ((40, 30, 24), (90, 60, 30), (20, 20, 20), (170, 140, 90))


@dataclass
class Sprite:
    """One billboard texture. Texel (i, j) centre sits at x = -width/2 + (j+.5)*texel, y = y0 +
    height - (i+.5)*texel in the object's frame (x right, y up, metres)."""

    kind: str
    fine: int          # main fine class (decides instance / thing status)
    width: float
    height: float
    texel: float
    rip: RipMap
    label: np.ndarray
    y0: float = 0.0    # bottom elevation above the ground
    parts: tuple = ()  # texel rectangles (r0, r1, c0, c1) covering all opaque texels
    atlas_id: int = -1  # index in the library's SpriteAtlas

    def __post_init__(self):
        if not self.parts:
            self.parts = opaque_parts(self.label)
        #: parts in metres: (top offset, bottom offset below the sprite top, left, right offsets)
        self.parts_m = tuple((r0 * self.texel, r1 * self.texel, c0 * self.texel, c1 * self.texel)
                             for r0, r1, c0, c1 in self.parts)

    @property
    def thing(self) -> bool:
        return int(FINE_TO_TRAINID[self.fine]) in THING_TRAINIDS


def opaque_parts(label: np.ndarray, band: int = 16) -> tuple:
    """Cover the opaque texels with few tight rectangles (row bands, merged while cheap), so a
    lamp post with an arm or a tree on a trunk is not rendered as one mostly empty box."""
    occ = label != 255
    boxes = []
    for r in range(0, occ.shape[0], band):
        blk = occ[r:r + band]
        cols = np.flatnonzero(blk.any(0))
        if len(cols):
            rows = np.flatnonzero(blk.any(1))
            boxes.append([r + rows[0], r + rows[-1] + 1, cols[0], cols[-1] + 1])
    area = lambda b: (b[1] - b[0]) * (b[3] - b[2])  # noqa: E731
    merged = boxes[:1]
    for b in boxes[1:]:
        m = merged[-1]
        u = [min(m[0], b[0]), max(m[1], b[1]), min(m[2], b[2]), max(m[3], b[3])]
        if area(u) <= 1.25 * (area(m) + area(b)):
            merged[-1] = u
        else:
            merged.append(b)
    return tuple(tuple(int(v) for v in b) for b in merged)


def _sprite(kind, fine, cv: Canvas, rng, dom, y0=0.0, amp=0.07) -> Sprite:
    rgb, lab = cv.finish(rng, dom, amp)
    return Sprite(kind, fine, cv.width, cv.height, cv.texel, RipMap(rgb), lab, y0)


# --- vehicles -------------------------------------------------------------------------------------
#: kind -> (width, height, length, roof style)
VEHICLES = {
    "sedan": (1.80, 1.45, 4.5, "car"), "taxi": (1.80, 1.45, 4.6, "car"),
    "van": (1.95, 2.05, 5.0, "box"), "pickup": (1.95, 1.80, 5.3, "pickup"),
    "box_truck": (2.50, 3.40, 7.5, "truck"), "bus": (2.55, 3.10, 12.0, "bus"),
    "tram": (2.65, 3.70, 14.0, "bus"),
}


def vehicle_end(kind: str, view: str, color, dom: Domain, rng) -> Sprite:
    """Rear (``view='rear'``) or front view of a vehicle."""
    w, h, _, style = VEHICLES[kind]
    lab = F[kind]
    extra = 0.18 if kind == "taxi" else (0.5 if kind == "tram" else 0.0)
    cv = Canvas(w, h + extra, 0.025 if w < 2.2 else 0.03)
    hw = w / 2
    dark_body = scale_color(color, 0.7)
    # wheels and underbody
    for s in (-1, 1):
        cv.rect(s * (hw - 0.38), 0, s * (hw - 0.04), 0.34, lab, TIRE)
    cv.rect(-hw + 0.1, 0.16, hw - 0.1, 0.32, lab, DARK)
    belt = {"car": 0.95, "box": 1.05, "pickup": 1.0, "truck": 0.95, "bus": 1.0}[style]
    if style == "car":  # body + sloped cabin
        cv.poly([(-hw, 0.3), (hw, 0.3), (hw, belt - 0.05), (hw - 0.08, belt), (-hw + 0.08, belt),
                 (-hw, belt - 0.05)], lab, color)
        cv.poly([(-hw + 0.12, belt), (hw - 0.12, belt), (hw - 0.3, h), (-hw + 0.3, h)], lab, color)
        glass = (-hw + 0.22, belt + 0.05, hw - 0.22, h - 0.07)
        cv.poly([(glass[0], glass[1]), (glass[2], glass[1]), (glass[2] - 0.16, glass[3]),
                 (glass[0] + 0.16, glass[3])], lab, GLASS_REAR if view == "rear" else (70, 84, 96))
        if kind == "taxi":
            cv.rect(-0.28, h - 0.01, 0.28, h + extra, lab, (250, 240, 200))
    else:  # boxy: van, pickup, truck, bus, tram
        cv.rect(-hw, 0.3, hw, h - 0.04, lab, color)
        cv.rect(-hw + 0.05, h - 0.04, hw - 0.05, h, lab, scale_color(color, 0.85))
        if style == "pickup" and view == "rear":
            cv.rect(-hw + 0.06, belt, hw - 0.06, belt + 0.06, lab, dark_body)  # tailgate edge
            cv.rect(-hw + 0.3, belt + 0.25, hw - 0.3, h - 0.12, lab, GLASS_REAR)
        elif view == "front" or style in ("bus",) or kind == "van":
            top = h - (0.12 if style != "bus" else 0.35)
            bot = belt + (0.05 if view == "front" else 0.3)
            cv.rect(-hw + 0.12, bot, hw - 0.12, top, lab,
                    (72, 86, 98) if view == "front" else GLASS_REAR)
            if style == "bus":
                cv.rect(-hw + 0.4, top + 0.06, hw - 0.4, h - 0.08, lab, (30, 30, 30))
                cv.rect(-hw + 0.5, top + 0.1, -0.1, h - 0.12, lab, (240, 160, 40))  # display
        if style == "truck" and view == "rear":
            cv.rect(-0.02, belt, 0.02, h - 0.1, lab, dark_body)  # door seam
            for s in (-1, 1):
                cv.rect(s * 0.6 - 0.03, belt + 0.2, s * 0.6 + 0.03, h - 0.3, lab, dark_body)
        if kind == "tram":
            cv.line(-0.5, h, 0.0, h + extra, 0.05, lab, DARK)  # pantograph
            cv.line(0.5, h, 0.0, h + extra, 0.05, lab, DARK)
            cv.rect(-0.6, h + extra - 0.05, 0.6, h + extra, lab, DARK)
    # lights, bumper, plate
    light = RED if view == "rear" else (246, 244, 226)
    ly = belt - 0.22 if style == "car" else 0.55
    for s in (-1, 1):
        cv.rect(s * (hw - 0.3), ly, s * (hw - 0.04), ly + 0.16, lab, light)
    cv.rect(-hw + 0.02, 0.3, hw - 0.02, 0.44, lab, DARK)
    cv.rect(-0.26, 0.46, 0.26, 0.57, lab, (232, 232, 226))
    if view == "front" and style == "car":
        cv.rect(-0.45, 0.6, 0.45, belt - 0.12, lab, scale_color(color, 0.5))  # grille
    return _sprite(f"{kind}_{view}", lab, cv, rng, dom)


def vehicle_side(kind: str, color, dom: Domain, rng) -> Sprite:
    """Side view (facing +x: front on the right) of a crossing vehicle."""
    w, h, L, style = VEHICLES[kind]
    lab = F[kind]
    cv = Canvas(L, h + (0.18 if kind == "taxi" else 0.0), 0.03 if L < 6 else 0.045)
    hl = L / 2
    r = 0.33 if style in ("car", "box", "pickup") else 0.5
    belt = 0.95 if style in ("car", "pickup") else 1.1
    if style == "car":
        cv.poly([(-hl, 0.3), (hl, 0.3), (hl, 0.75), (hl - 0.2, belt - 0.05), (hl * 0.45, belt),
                 (-hl + 0.1, belt), (-hl, 0.8)], lab, color)
        cv.poly([(hl * 0.42, belt), (-hl * 0.62, belt), (-hl * 0.45, h), (hl * 0.1, h)], lab, color)
        cv.poly([(hl * 0.36, belt + 0.04), (-hl * 0.55, belt + 0.04), (-hl * 0.42, h - 0.06),
                 (hl * 0.1, h - 0.06)], lab, (60, 74, 88))
        cv.rect(-0.06, belt + 0.02, 0.02, h - 0.04, lab, scale_color(color, 0.8))  # B-pillar
        if kind == "taxi":
            cv.rect(-0.5, h - 0.01, -0.1, h + 0.18, lab, (250, 240, 200))
    elif style == "pickup":
        cv.poly([(-hl, 0.3), (hl, 0.3), (hl, 0.85), (hl - 0.2, belt + 0.05), (-hl, belt + 0.05)],
                lab, color)
        cv.poly([(hl - 0.9, belt), (-0.3, belt), (-0.2, h), (hl - 1.3, h)], lab, color)
        cv.poly([(hl - 1.0, belt + 0.06), (-0.22, belt + 0.06), (-0.14, h - 0.06),
                 (hl - 1.3, h - 0.06)], lab, (60, 74, 88))
    else:  # boxes: van, truck (cab + box), bus/tram (windows row)
        cv.rect(-hl, 0.3, hl, h - 0.05, lab, color)
        if style == "truck":
            cv.rect(hl - 2.0, 0.3, hl, h * 0.8, lab, scale_color(color, 0.8))
            cv.rect(hl - 1.95, h * 0.8, hl - 0.2, h * 0.8 + 0.05, lab, DARK)  # gap above cab
            cv.rect(hl - 0.9, 1.4, hl - 0.15, h * 0.75, lab, (60, 74, 88))
            cv.rect(-hl, h * 0.8, hl - 2.05, h - 0.02, lab, (226, 226, 222))  # box
        else:
            n = max(1, int(L / 1.6))
            for i in range(n):
                x0 = -hl + 0.3 + i * (L - 0.6) / n
                cv.rect(x0 + 0.06, belt + 0.15, x0 + (L - 0.6) / n - 0.06, h - 0.35, lab, (60, 74, 88))
    for x in (-hl + 0.9 if style != "bus" else -hl + 2.6, hl - 0.8 if style != "bus" else hl - 2.4):
        cv.ellipse(x, r, r, r, lab, TIRE)
        cv.ellipse(x, r, r * 0.5, r * 0.5, lab, (150, 150, 156))
    cv.rect(hl - 0.12, 0.55, hl, 0.72, lab, (246, 244, 226))  # head light
    cv.rect(-hl, 0.6, -hl + 0.08, 0.75, lab, RED)
    return _sprite(f"{kind}_side", lab, cv, rng, dom)


# --- people ----------------------------------------------------------------------------------------
def person(fine: int, view: str, dom: Domain, rng, height: float = 1.75, kind: str = "") -> Sprite:
    """Pedestrian/child standing or walking; ``view`` in front, back, side."""
    s = height / 1.75
    cv = Canvas(0.7 * s, height, 0.02 * max(s, 0.7))
    shirt = dom.clothes[rng.integers(len(dom.clothes))]
    pants = dom.clothes[rng.integers(len(dom.clothes))]
    skin, hair = SKIN[rng.integers(4)], HAIR[rng.integers(4)]
    shoe = (30, 28, 26)
    if view == "side":  # walking: legs apart
        cv.line(0, 0.86 * s, 0.2 * s, 0.05 * s, 0.13 * s, fine, scale_color(pants, 0.85))
        cv.line(0, 0.86 * s, -0.2 * s, 0.05 * s, 0.13 * s, fine, pants)
        cv.rect(0.14 * s, 0, 0.3 * s, 0.07 * s, fine, shoe)
        cv.rect(-0.26 * s, 0, -0.1 * s, 0.07 * s, fine, shoe)
        cv.poly([(-0.12 * s, 0.82 * s), (0.12 * s, 0.82 * s), (0.11 * s, 1.45 * s),
                 (-0.11 * s, 1.45 * s)], fine, shirt)
        cv.line(0.0, 1.4 * s, 0.16 * s, 0.95 * s, 0.08 * s, fine, scale_color(shirt, 0.8))
        cv.ellipse(0.01 * s, 1.6 * s, 0.1 * s, 0.12 * s, fine, skin)
        cv.ellipse(-0.02 * s, 1.64 * s, 0.09 * s, 0.09 * s, fine, hair)
    else:
        for sx in (-1, 1):
            cv.rect(sx * 0.02 * s, 0.05 * s, sx * 0.15 * s, 0.86 * s, fine,
                    pants if sx < 0 else scale_color(pants, 0.9))
            cv.rect(sx * 0.02 * s, 0, sx * 0.17 * s, 0.07 * s, fine, shoe)
            cv.line(sx * 0.2 * s, 1.42 * s, sx * 0.25 * s, 0.85 * s, 0.08 * s, fine,
                    scale_color(shirt, 0.85))
        cv.poly([(-0.19 * s, 0.82 * s), (0.19 * s, 0.82 * s), (0.2 * s, 1.45 * s),
                 (-0.2 * s, 1.45 * s)], fine, shirt)
        cv.rect(-0.05 * s, 1.44 * s, 0.05 * s, 1.5 * s, fine, skin)
        cv.ellipse(0, 1.6 * s, 0.1 * s, 0.125 * s, fine, skin if view == "front" else hair)
        cv.ellipse(0, 1.68 * s, 0.1 * s, 0.06 * s, fine, hair)
    return _sprite(kind or f"{'child' if fine == F['child'] else 'pedestrian'}_{view}", fine, cv,
                   rng, dom)


def rider(fine: int, view: str, dom: Domain, rng) -> Sprite:
    """Cyclist or motorcyclist seated (legs down to the pedals); drawn over its two-wheeler."""
    moto = fine == F["motorcyclist"]
    cv = Canvas(0.8 if view != "side" else 1.0, 1.0 if moto else 1.25, 0.02)
    shirt = dom.clothes[rng.integers(len(dom.clothes))] if not moto else (40, 40, 44)
    pants = dom.clothes[rng.integers(len(dom.clothes))]
    head = (220, 220, 220) if moto else SKIN[rng.integers(4)]
    top = cv.height
    if view == "side":
        cv.line(-0.05, top - 0.55, 0.15, 0.0, 0.12, fine, pants)
        cv.poly([(-0.2, top - 0.6), (0.0, top - 0.6), (0.22, top - 0.2), (0.05, top - 0.15)],
                fine, shirt)
        cv.line(0.12, top - 0.25, 0.4, top - 0.42, 0.07, fine, scale_color(shirt, 0.8))
        cv.ellipse(0.16, top - 0.1, 0.1, 0.1, fine, head)
    else:
        for sx in (-1, 1):
            cv.rect(sx * 0.03, 0.0, sx * 0.14, top - 0.55, fine, pants)
            cv.line(sx * 0.2, top - 0.25, sx * 0.3, top - 0.5, 0.07, fine, scale_color(shirt, 0.8))
        cv.poly([(-0.2, top - 0.6), (0.2, top - 0.6), (0.21, top - 0.22), (-0.21, top - 0.22)],
                fine, shirt)
        cv.ellipse(0, top - 0.11, 0.11 if moto else 0.1, 0.12, fine, head)
    kind = ("motorcyclist" if moto else "cyclist") + f"_{view}"
    return _sprite(kind, fine, cv, rng, dom, y0=0.62 if not moto else 0.7)


def two_wheeler(fine: int, view: str, dom: Domain, rng) -> Sprite:
    """Bicycle or motorcycle; side views have see-through wheels (thin rings + spokes)."""
    moto = fine == F["motorcycle"]
    color = dom.cars[rng.integers(len(dom.cars))] if moto else \
        ((30, 30, 30), (160, 20, 20), (20, 60, 120), (200, 200, 200))[rng.integers(4)]
    if view == "side":
        L = 2.05 if moto else 1.75
        r = 0.31 if moto else 0.34
        cv = Canvas(L, 1.15 if moto else 1.05, 0.012 if not moto else 0.018)
        for x in (-L / 2 + r + 0.02, L / 2 - r - 0.02):
            cv.ring(x, r, r, r - (0.09 if moto else 0.035), fine, TIRE)
            cv.line(x - r * 0.7, r, x + r * 0.7, r, 0.015, fine, (120, 120, 120))
            cv.line(x, r * 0.3, x, r * 1.7, 0.015, fine, (120, 120, 120))
        bx, fx = -L / 2 + r + 0.02, L / 2 - r - 0.02
        if moto:
            cv.poly([(bx + 0.2, r + 0.1), (fx - 0.25, r + 0.05), (fx - 0.35, r + 0.45),
                     (bx + 0.25, r + 0.45)], fine, color)
            cv.rect(bx - 0.05, r + 0.4, 0.1, r + 0.52, fine, DARK)  # seat
            cv.line(fx, r, fx - 0.25, 1.05, 0.05, fine, (150, 150, 150))
        else:
            cv.line(bx, r, 0.0, r, 0.03, fine, color)
            cv.line(0.0, r, -0.15, 0.82, 0.035, fine, color)
            cv.line(bx, r, -0.15, 0.82, 0.03, fine, color)
            cv.line(-0.15, 0.8, fx - 0.12, 0.85, 0.035, fine, color)
            cv.line(0.0, r, fx - 0.12, 0.85, 0.035, fine, color)
            cv.line(fx, r, fx - 0.15, 0.98, 0.03, fine, color)
            cv.rect(-0.27, 0.84, -0.05, 0.9, fine, DARK)  # saddle
    else:
        cv = Canvas(0.8 if moto else 0.62, 1.2 if moto else 1.08, 0.01)
        cv.rect(-0.06 if moto else -0.025, 0, 0.06 if moto else 0.025, 0.62, fine, TIRE)
        if moto:
            cv.poly([(-0.2, 0.35), (0.2, 0.35), (0.25, 0.85), (-0.25, 0.85)], fine, color)
            cv.rect(-0.12, 0.45, 0.12, 0.55, fine, RED if view == "rear" else (246, 244, 226))
            cv.rect(-0.38, 1.0, 0.38, 1.05, fine, DARK)
        else:
            cv.rect(-0.02, 0.6, 0.02, 0.98, fine, color)
            cv.rect(-0.3, 0.97, 0.3, 1.01, fine, DARK)  # handlebar
            cv.rect(-0.08, 0.86, 0.08, 0.9, fine, DARK)
    kind = ("motorcycle" if moto else "bicycle") + f"_{view}"
    return _sprite(kind, fine, cv, rng, dom, amp=0.04)


# --- street furniture ------------------------------------------------------------------------------
def pole(dom: Domain, rng, height: float) -> Sprite:
    cv = Canvas(0.2, height, 0.02)
    w = rng.uniform(0.05, 0.08)
    cv.rect(-w, 0, w, height, F["pole"], (110, 112, 114) if rng.random() < 0.6 else (60, 70, 62))
    cv.rect(-w - 0.01, height - 0.06, w + 0.01, height, F["pole"], (80, 80, 80))
    return _sprite("pole", F["pole"], cv, rng, dom)


def streetlight(dom: Domain, rng, side: int) -> Sprite:
    """Lamp post; ``side`` = +1 if the arm reaches to the right (+x)."""
    h = rng.uniform(7.0, 9.0)
    arm = rng.uniform(1.2, 2.0)
    cv = Canvas(2 * arm + 0.6, h + 0.3, 0.025)
    c = (96, 100, 104)
    lab = F["streetlight"]
    cv.rect(-0.08, 0, 0.08, 1.0, lab, scale_color(c, 0.9))
    cv.rect(-0.06, 1.0, 0.06, h, lab, c)
    cv.line(0, h - 0.2, side * arm * 0.6, h + 0.15, 0.06, lab, c)
    cv.line(side * arm * 0.6, h + 0.15, side * arm, h + 0.1, 0.06, lab, c)
    cv.rect(side * arm - 0.3, h - 0.05, side * arm + 0.3, h + 0.12, lab, (70, 72, 76))
    cv.rect(side * arm - 0.24, h - 0.09, side * arm + 0.24, h - 0.04, lab, (236, 232, 200))
    return _sprite("streetlight", lab, cv, rng, dom)


SIGN_DESIGNS = ("round_red", "round_blue", "triangle", "square_blue", "name", "octagon")


def sign(dom: Domain, rng, front: bool, design: str | None = None) -> Sprite:
    """Sign plate on a post; ``front=False`` shows the grey back of the plate."""
    design = design or SIGN_DESIGNS[rng.integers(len(SIGN_DESIGNS))]
    h = rng.uniform(2.2, 2.8)
    cv = Canvas(1.0 if design == "name" else 0.8, h + 0.75, 0.015)
    plab = F["sign_front"] if front else F["sign_back"]
    cv.rect(-0.035, 0, 0.035, h, F["pole"], (120, 122, 124))
    grey = (150, 152, 150)
    yc = h + 0.35
    if design in ("round_red", "round_blue"):
        cv.ellipse(0, yc, 0.32, 0.32, plab, RED if front and design == "round_red" else
                   ((30, 80, 170) if front else grey))
        if front:
            cv.ellipse(0, yc, 0.24, 0.24, plab, (240, 240, 240) if design == "round_red" else (30, 80, 170))
            if design == "round_blue":
                cv.poly([(-0.15, yc - 0.05), (0.05, yc - 0.05), (0.05, yc - 0.14), (0.18, yc),
                         (0.05, yc + 0.14), (0.05, yc + 0.05), (-0.15, yc + 0.05)], plab, (240, 240, 240))
    elif design == "triangle":
        pts = [(-0.36, yc - 0.27), (0.36, yc - 0.27), (0, yc + 0.36)]
        cv.poly(pts, plab, RED if front else grey)
        if front:
            cv.poly([(-0.24, yc - 0.2), (0.24, yc - 0.2), (0, yc + 0.22)], plab, (240, 240, 240))
            cv.rect(-0.03, yc - 0.12, 0.03, yc + 0.08, plab, (20, 20, 20))
    elif design == "square_blue":
        cv.rect(-0.3, yc - 0.3, 0.3, yc + 0.3, plab, (30, 80, 170) if front else grey)
        if front:
            cv.rect(-0.08, yc - 0.2, 0.12, yc + 0.2, plab, (240, 240, 240))
            cv.ellipse(0.02, yc + 0.05, 0.09, 0.1, plab, (30, 80, 170))
    elif design == "name":
        cv.rect(-0.48, yc - 0.12, 0.48, yc + 0.12, plab, (240, 240, 236) if front else grey)
        if front:
            for i in range(6):
                cv.rect(-0.4 + i * 0.13, yc - 0.05, -0.33 + i * 0.13, yc + 0.05, plab, (30, 30, 30))
    else:  # octagon (stop)
        a = np.linspace(0, 2 * np.pi, 8, endpoint=False) + np.pi / 8
        cv.poly(np.stack([0.33 * np.cos(a), yc + 0.33 * np.sin(a)], 1), plab,
                (200, 20, 20) if front else grey)
        if front:
            cv.rect(-0.2, yc - 0.05, 0.2, yc + 0.05, plab, (240, 240, 240))
    return _sprite(f"sign_{'front' if front else 'back'}", plab, cv, rng, dom, amp=0.04)


def traffic_light(dom: Domain, rng, front: bool, overhead: int = 0) -> Sprite:
    """Signal head on a post (``overhead`` = +-1: on an arm reaching over the road to that side)."""
    h = rng.uniform(2.6, 3.4)
    arm = 4.0 if overhead else 0.0
    cv = Canvas(2 * arm + 0.6, h + 1.5 if overhead else h + 1.0, 0.015 if not overhead else 0.02)
    tl, pl = F["traffic_light"], F["pole"]
    c = (70, 72, 70)
    cv.rect(-0.05, 0, 0.05, h + (1.4 if overhead else 0.0), pl, c)
    x = overhead * (arm - 0.3)
    yb = h + 0.45 if overhead else h
    if overhead:
        cv.rect(min(0, overhead * arm), h + 1.3, max(0, overhead * arm), h + 1.38, pl, c)
        cv.rect(x - 0.02, h + 1.35 - 0.05, x + 0.02, h + 1.35, pl, c)
        yb = h + 1.3 - 0.9
    cv.rect(x - 0.16, yb, x + 0.16, yb + 0.9, tl, (26, 28, 26) if front else (56, 58, 56))
    if front:
        lit = rng.integers(3)
        for i, col in enumerate(((30, 200, 80), (240, 170, 20), (220, 30, 20))):
            cv.ellipse(x, yb + 0.15 + i * 0.3, 0.1, 0.1, tl, col if i == lit else scale_color(col, 0.3))
    return _sprite("traffic_light_" + ("front" if front else "back"), tl, cv, rng, dom, amp=0.04)


def tree(dom: Domain, rng) -> Sprite:
    """Trunk + leafy canopy of overlapping blobs, with a few see-through gaps."""
    h = rng.uniform(6.0, 11.0)
    wdt = rng.uniform(3.5, 6.5)
    cv = Canvas(wdt + 0.4, h, 0.035)
    lab = F["tree"]
    trunk_h = rng.uniform(1.8, min(2.8, h - 3.0))
    cv.rect(-0.14, 0, 0.14, trunk_h + 0.6, lab, (84, 66, 50))
    base = np.asarray(dom.tree, np.float64)
    for _ in range(14):
        cx = rng.uniform(-wdt / 2 + 0.7, wdt / 2 - 0.7)
        cy = rng.uniform(trunk_h + 1.0, h - 1.0)
        r = rng.uniform(0.7, 1.2)
        cv.ellipse(cx, cy, r, r * rng.uniform(0.8, 1.1), lab, base * rng.uniform(0.75, 1.2))
    for _ in range(3):  # gaps in the foliage
        cx, cy = rng.uniform(-wdt / 3, wdt / 3), rng.uniform(trunk_h + 1.2, max(trunk_h + 1.3, h - 1.5))
        r = rng.uniform(0.1, 0.22)
        cv.ellipse(cx, cy, r, r, 255, (0, 0, 0))
    return _sprite("tree", lab, cv, rng, dom, amp=0.22)


# --- the library ----------------------------------------------------------------------------------
def _mirror(s: Sprite, kind: str) -> Sprite:
    img = s.rip.get(0, 0)[:, ::-1]
    return Sprite(kind, s.fine, s.width, s.height, s.texel, RipMap(img.copy()),
                  s.label[:, ::-1].copy(), s.y0)


class SpriteAtlas:
    """All sprites of a library packed into one colour atlas (every mip level) and one label
    atlas (level 0), so the renderer samples every billboard of a frame with two ``cv2.remap``
    calls. Items are separated by 2 texels of replicated colour / transparent label."""

    PAD = 2
    MAX_W = 4096

    def __init__(self, sprites: list[Sprite]):
        self.max_level = 8
        lab_items = [s.label for s in sprites]
        col_items, self.col_index = [], []
        for s in sprites:
            idx = []
            for k in range(self.max_level + 1):
                img = s.rip.get(k, k)
                if k and min(img.shape[:2]) < 2:
                    break
                idx.append(len(col_items))
                col_items.append(img)
            self.col_index.append(idx)
        self.label, lab_pos = self._pack(lab_items, 255)
        self.color, col_pos = self._pack(col_items, None)
        #: per sprite: level-0 label offset (x, y) and size (rows, cols)
        self.lab_off = np.array([p for p in lab_pos], np.float64)
        self.size = np.array([s.label.shape for s in sprites], np.float64)
        #: per sprite and level: (x offset, y offset, x scale, y scale) of the colour texels
        self.col_off = np.zeros((len(sprites), self.max_level + 1, 4))
        for i, s in enumerate(sprites):
            for k in range(self.max_level + 1):
                j = self.col_index[i][min(k, len(self.col_index[i]) - 1)]
                h, w = col_items[j].shape[:2]
                self.col_off[i, k] = (*col_pos[j], w / s.label.shape[1], h / s.label.shape[0])

    def _pack(self, items, pad_value):
        """Shelf packing; returns the atlas and each item's (x, y) of its first texel."""
        P = self.PAD
        order = sorted(range(len(items)), key=lambda i: -items[i].shape[0])
        pos, x, y, shelf, width = [None] * len(items), 0, 0, 0, 0
        for i in order:
            h, w = items[i].shape[:2]
            if x + w + 2 * P > self.MAX_W:
                x, y, shelf = 0, y + shelf, 0
            pos[i] = (x + P, y + P)
            x += w + 2 * P
            shelf = max(shelf, h + 2 * P)
            width = max(width, x)
        chans = items[0].shape[2:] if items[0].ndim == 3 else ()
        atlas = np.full((y + shelf, width, *chans), 255 if pad_value is not None else 0, np.uint8)
        for i, (px, py) in enumerate(pos):
            it = items[i]
            h, w = it.shape[:2]
            if pad_value is None:
                it = cv2.copyMakeBorder(it, P, P, P, P, cv2.BORDER_REPLICATE)
                atlas[py - P:py + h + P, px - P:px + w + P] = it
            else:
                atlas[py:py + h, px:px + w] = it
        return atlas, pos


class SpriteLibrary(dict):
    """kind -> tuple of Sprite variants, plus the packed ``atlas`` (``Sprite.atlas_id`` indexes it)."""

    atlas: SpriteAtlas


@lru_cache(maxsize=8)
def sprite_library(domain: str, seed: int) -> SpriteLibrary:
    """All sprite variants of a (domain, seed): kind -> variants.

    Kinds: ``<vehicle>_{rear,front,side_l,side_r}`` (side_r moves to +x), ``pedestrian_*``,
    ``child_*`` (front, back, side_l, side_r), ``cyclist_*``/``motorcyclist_*`` and
    ``bicycle_*``/``motorcycle_*`` (rear, front, side_l, side_r), ``pole``,
    ``streetlight_l``/``_r``, ``sign_front``, ``sign_back``, ``traffic_light_front``/``_back``,
    ``traffic_light_over_l``/``_r``, ``tree``.
    """
    dom = get_domain(domain)
    rng = np.random.default_rng([seed, dom.code, 7])
    lib: dict[str, list[Sprite]] = {}

    def add(kind, sprite):
        lib.setdefault(kind, []).append(sprite)

    def add_sides(kind, sprite):  # drawn facing +x (right)
        add(kind + "_side_r", sprite)
        add(kind + "_side_l", _mirror(sprite, kind + "_side_l"))

    for kind in VEHICLES:
        n = 1 if kind == "tram" else (2 if kind in ("taxi", "bus") else 4)
        for i in range(n):
            color = dom.taxi if kind == "taxi" else (
                ((236, 236, 230), (200, 40, 30), (250, 200, 30))[rng.integers(3)] if kind in ("bus", "tram")
                else dom.cars[rng.integers(len(dom.cars))])
            add(kind + "_rear", vehicle_end(kind, "rear", color, dom, rng))
            add(kind + "_front", vehicle_end(kind, "front", color, dom, rng))
            if kind != "tram":
                add_sides(kind, vehicle_side(kind, color, dom, rng))
    for fine, hgt, n in ((F["pedestrian"], 1.75, 6), (F["child"], 1.2, 3)):
        name = FINE_NAMES[fine]
        for i in range(n):
            hh = hgt * rng.uniform(0.92, 1.08)
            add(f"{name}_front", person(fine, "front", dom, rng, hh))
            add(f"{name}_back", person(fine, "back", dom, rng, hh))
            add_sides(name, person(fine, "side", dom, rng, hh))
    for rfine, wfine in ((F["cyclist"], F["bicycle"]), (F["motorcyclist"], F["motorcycle"])):
        for i in range(3):
            for view in ("rear", "front"):
                add(f"{FINE_NAMES[rfine]}_{view}", rider(rfine, view if view == "rear" else "front", dom, rng))
                add(f"{FINE_NAMES[wfine]}_{view}", two_wheeler(wfine, view, dom, rng))
            add_sides(FINE_NAMES[rfine], rider(rfine, "side", dom, rng))
            add_sides(FINE_NAMES[wfine], two_wheeler(wfine, "side", dom, rng))
    for i in range(3):
        add("pole", pole(dom, rng, rng.uniform(2.5, 6.0)))
        add("streetlight_r", streetlight(dom, rng, +1))
        add("streetlight_l", streetlight(dom, rng, -1))
        add("traffic_light_front", traffic_light(dom, rng, True))
        add("traffic_light_back", traffic_light(dom, rng, False))
    for i in range(2):
        add("traffic_light_over_l", traffic_light(dom, rng, True, overhead=-1))
        add("traffic_light_over_r", traffic_light(dom, rng, True, overhead=+1))
    for design in SIGN_DESIGNS:
        add("sign_front", sign(dom, rng, True, design))
        add("sign_back", sign(dom, rng, False, design))
    for i in range(5):
        add("tree", tree(dom, rng))
    out = SpriteLibrary({k: tuple(v) for k, v in lib.items()})
    sprites = [sp for v in out.values() for sp in v]
    for i, sp in enumerate(sprites):
        sp.atlas_id = i
    out.atlas = SpriteAtlas(sprites)
    return out

