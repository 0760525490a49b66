"""Who and what is in a clip: parked and moving vehicles, pedestrians, riders, street furniture.

Densities come from the ``Domain`` (expected counts per 100 m of street); velocities are
constant per object (m/s, converted to m/frame), so every object's motion, and hence the
optical flow, is known exactly. Riders are two sprites (rider + its two-wheeler) sharing one
motion, as Cityscapes labels them as two instances.
"""
from __future__ import annotations

import numpy as np

from .domains import Domain
from .layout import PARK_W, SID_OBJECTS, Camera, Obj
from .sprites import VEHICLES, Sprite


class Population:
    def __init__(self, dom: Domain, rng, lib, fps: float, length: int, z_end: float, cam: Camera):
        self.dom, self.rng, self.lib, self.fps = dom, rng, lib, fps
        self.dur = length / fps          # seconds
        self.z_end = z_end
        self.cam = cam
        self.t = np.arange(length, dtype=np.float64)
        self.objects: list[Obj] = []

    def pick(self, kind: str) -> Sprite:
        v = self.lib[kind]
        return v[self.rng.integers(len(v))]

    def add(self, sprite: Sprite, x: float, z: float, vx: float = 0.0, vz: float = 0.0) -> bool:
        """Add an object moving (vx, vz) m/s; refuse it if it would reach the end wall or be
        driven through by the ego car (closer than 4 m ahead in its path at any frame)."""
        z_last = z + vz * self.dur
        if max(z, z_last) > self.z_end - 1.0:
            return False
        t = self.t
        dx = np.abs(x + vx / self.fps * t - self.cam.x) - sprite.width / 2
        dz = z + vz / self.fps * t - self.cam.z
        if np.any((dx < 1.1) & (dz > -3.0) & (dz < 4.0)):
            return False
        self.objects.append(Obj(sprite, x, z, vx / self.fps, vz / self.fps))
        return True

    def vehicle_kind(self, parked: bool = False) -> str:
        mix = dict(self.dom.vehicle_mix)
        if parked:
            mix.pop("bus", None)
            mix["box_truck"] = mix.get("box_truck", 0) * 0.3
        kinds = list(mix)
        p = np.array([mix[k] for k in kinds], float)
        return kinds[self.rng.choice(len(kinds), p=p / p.sum())]

    def poisson(self, per100: float, length: float) -> int:
        return int(self.rng.poisson(max(per100, 0.0) * length / 100.0))

    def finish(self) -> list[Obj]:
        inst = 0
        for k, o in enumerate(self.objects):
            o.sid = SID_OBJECTS + k
            if o.sprite.thing:
                inst += 1
                o.inst = inst
        return self.objects


def _in_cross(z, cross, margin=6.0):
    return any(za - margin < z < zb + 1.0 for za, zb in cross)


def populate(dom: Domain, rng, lib, fps: float, length: int, sides, cross, lanes: int,
             lane_w: float, cam: Camera, z_end: float) -> list[Obj]:
    P = Population(dom, rng, lib, fps, length, z_end, cam)
    span = z_end - 10.0
    v_ego = float(np.mean(np.diff(cam.z))) * fps if length > 1 else 8.0
    left, right = sides
    # --- parked vehicles ----------------------------------------------------------------------
    for sd in sides:
        if not sd.parking:
            continue
        occ = min(0.95, dom.parked / 16.0)
        z = rng.uniform(-6.0, 2.0)
        while z < span:
            kind = P.vehicle_kind(parked=True)
            L = VEHICLES[kind][2]
            if rng.random() < occ and not _in_cross(z, cross) and not _in_cross(z + L, cross):
                view = "rear" if sd.s > 0 else "front"
                P.add(P.pick(f"{kind}_{view}"), sd.s * (sd.road - PARK_W / 2 - 0.05), z)
            z += L + rng.uniform(0.8, 3.0)
    # --- moving traffic (per lane: one speed, spaced, so vehicles never pass through each other)
    ego_lane = int(np.clip(cam.x[0] // lane_w, 0, lanes - 1))
    for s, rate in ((1, dom.traffic), (-1, dom.oncoming)):
        for k in range(lanes):
            x = s * (k + 0.5) * lane_w
            if s > 0:
                v = max(0.0, v_ego + rng.uniform(-1.0, 3.0)) if k == ego_lane else \
                    max(0.0, v_ego + rng.uniform(-4.0, 6.0))
                z = rng.uniform(8.0, 25.0) if k == ego_lane else rng.uniform(-20.0, 10.0)
            else:
                v = -rng.uniform(6.0, 14.0)
                z = rng.uniform(5.0, 30.0)
            p_fill = min(0.9, rate / lanes / 3.0)
            while z < span:
                kind = P.vehicle_kind()
                L = VEHICLES[kind][2]
                if rng.random() < p_fill:
                    P.add(P.pick(f"{kind}_{'rear' if s > 0 else 'front'}"), x + rng.uniform(-0.3, 0.3), z,
                          0.0, v)
                z += L + rng.uniform(6.0, 30.0)
    if rng.random() < dom.tram:  # a tram: oncoming in the left lane or ahead on the right
        if rng.random() < 0.5:
            P.add(P.pick("tram_front"), -0.5 * lane_w, rng.uniform(25, 80), 0.0, -rng.uniform(5, 10))
        else:
            P.add(P.pick("tram_rear"), (lanes - 0.5) * lane_w, rng.uniform(12, 40), 0.0,
                  max(0.0, v_ego + rng.uniform(-1, 2)))
    # --- two-wheelers --------------------------------------------------------------------------
    def rider_pair(rider, wheel, x, z, vx, vz, view):
        if P.add(P.pick(f"{wheel}_{view}"), x, z, vx, vz):
            P.add(P.pick(f"{rider}_{view}"), x, z - 0.05, vx, vz)

    for s in (1, -1):
        sd = right if s > 0 else left
        x_bike = s * (sd.road - (PARK_W if sd.parking else 0.0) - 0.7)
        for _ in range(P.poisson(dom.cyclists / 2, span)):
            vz = rng.uniform(3.0, 6.0) * s
            rider_pair("cyclist", "bicycle", x_bike + rng.uniform(-0.3, 0.3),
                       rng.uniform(3.0, span), 0.0, vz, "rear" if s > 0 else "front")
        for _ in range(P.poisson(dom.motorcycles / 2, span)):
            vz = (v_ego + rng.uniform(-2, 5)) if s > 0 else -rng.uniform(7, 14)
            rider_pair("motorcyclist", "motorcycle", s * (rng.integers(lanes) + 0.5) * lane_w
                       + rng.uniform(-0.8, 0.8), rng.uniform(6.0, span), 0.0, vz,
                       "rear" if s > 0 else "front")
    # --- pedestrians on the sidewalks, crossing pedestrians, crossing traffic -----------------
    for sd in sides:
        x0, x1 = sd.road + 0.25 + sd.verge + 0.3, sd.walk - 0.3
        for _ in range(P.poisson(dom.pedestrians / 2, span)):
            child = rng.random() < 0.12
            name = "child" if child else "pedestrian"
            x, z = sd.s * rng.uniform(x0, max(x0, x1)), rng.uniform(-2.0, span)
            if rng.random() < 0.3:
                P.add(P.pick(f"{name}_{'front' if rng.random() < 0.5 else 'back'}"), x, z)
            else:
                vz = rng.uniform(0.8, 1.6) * (1 if rng.random() < 0.5 else -1)
                P.add(P.pick(f"{name}_{'back' if vz > 0 else 'front'}"), x, z, 0.0, vz)
        for _ in range(P.poisson(dom.parked_bicycles / 2, span)):  # racks: side views in a row
            x = sd.s * rng.uniform(x0, max(x0, x1))
            z = rng.uniform(0.0, span)
            for i in range(int(rng.integers(1, 5))):
                P.add(P.pick(f"bicycle_side_{'r' if rng.random() < 0.5 else 'l'}"), x, z + 0.7 * i)
    road_l, road_r = left.road, right.road
    zebras = [za - 3.0 for za, _ in cross]
    n_cross = P.poisson(dom.crossing, span) + sum(int(rng.poisson(dom.crossing * 3)) for _ in zebras)
    for i in range(n_cross):
        z = zebras[i % len(zebras)] + rng.uniform(-1.2, 1.2) if zebras and rng.random() < 0.7 \
            else rng.uniform(5.0, span)
        vx = rng.uniform(0.9, 1.6) * (1 if rng.random() < 0.5 else -1)
        name = "child" if rng.random() < 0.1 else "pedestrian"
        P.add(P.pick(f"{name}_side_{'r' if vx > 0 else 'l'}"), rng.uniform(-road_l, road_r), z, vx, 0.0)
    for za, zb in cross:
        if rng.random() < 0.7:
            vx = rng.uniform(5.0, 10.0) * (1 if rng.random() < 0.5 else -1)
            kind = P.vehicle_kind()
            if kind in ("tram",):
                kind = "sedan"
            z = za + 2.5 if vx > 0 else zb - 4.0
            P.add(P.pick(f"{kind}_side_{'r' if vx > 0 else 'l'}"), -np.sign(vx) * rng.uniform(5, 30), z, vx, 0.0)
    # --- street furniture -------------------------------------------------------------------------
    for sd in sides:
        x_curb = sd.s * (sd.road + 0.25 + (sd.verge / 2 if sd.verge else 0.45))
        n = max(1, int(span * dom.streetlights / 200))
        for z in np.linspace(rng.uniform(0, 20), span, n):
            if not _in_cross(z, cross, 2.0):
                P.add(P.pick("streetlight_l" if sd.s > 0 else "streetlight_r"), x_curb, z + rng.uniform(-2, 2))
        for _ in range(P.poisson(dom.trees / 2, span)):
            z = rng.uniform(-3.0, span)
            if not _in_cross(z, cross, 3.0):
                x = x_curb if sd.verge or rng.random() < 0.6 else sd.s * (sd.walk - 0.8)
                P.add(P.pick("tree"), x + rng.uniform(-0.2, 0.2), z)
        for _ in range(P.poisson(dom.signs / 2, span)):
            front = sd.s > 0 or rng.random() < 0.4
            P.add(P.pick("sign_front" if front else "sign_back"), sd.s * (sd.road + 0.45), rng.uniform(0, span))
        for _ in range(P.poisson(dom.poles / 2, span)):
            P.add(P.pick("pole"), sd.s * (sd.road + 0.4 + rng.uniform(0, 0.4)), rng.uniform(0, span))
    for _ in range(P.poisson(dom.traffic_lights, span)):  # signals at mid-block crossings
        z = rng.uniform(5.0, span)
        P.add(P.pick("traffic_light_front"), road_r + 0.6, z)
        P.add(P.pick("traffic_light_back" if rng.random() < 0.5 else "traffic_light_front"), -(road_l + 0.6), z)
    for za, zb in cross:
        P.add(P.pick("traffic_light_front"), road_r + 0.6, za - 1.0)
        P.add(P.pick("traffic_light_front"), -(road_l + 0.6), zb + 0.6)
        P.add(P.pick("traffic_light_back"), -(road_l + 0.6), za - 1.0)
        if rng.random() < 0.5:
            P.add(P.pick("traffic_light_over_l"), road_r + 0.6, za - 0.9)
    return P.finish()
