"""``SyntheticWorld``: deterministic driving-video clips with dense labels, instances and exact flow."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterator

import cv2
import numpy as np

from .classes import FINE_TO_TRAINID
from .domains import FINE_BY_DEFAULT, get_domain
from .assets import SKY_MAX_TAN, world_assets
from .layout import Scene, camera_path, facade_planes, ground_map, make_lots, make_profile
from .population import populate
from .render import Renderer
from .sprites import sprite_library


@dataclass
class Clip:
    """A rendered clip of T frames (arrays indexed by frame; flows by frame pair t -> t+1).

    - ``frames`` (T, H, W, 3) uint8 RGB; ``labels`` (T, H, W) uint8 Cityscapes train ids, 255 void;
    - ``instances`` (T, H, W) int32: 0 for stuff/void, else an object id >= 1 that is stable over
      the clip (thing classes only: person, rider, car, truck, bus, train, motorcycle, bicycle);
    - ``flow_fw[t]`` (H, W, 2) float32, pixels (x, y): pixel p of frame t lands at p + flow_fw[t][p]
      in frame t+1; ``flow_bw[t]`` maps frame t+1 back to frame t;
    - ``valid_fw[t]`` / ``valid_bw[t]`` (H, W) bool: False where the point leaves the view or is
      occluded in the target frame;
    - ``fine_labels`` (T, H, W) uint8 in ``FINE_CLASSES`` ids, when the world was asked for them.
    """

    frames: np.ndarray
    labels: np.ndarray
    instances: np.ndarray
    flow_fw: np.ndarray | None
    flow_bw: np.ndarray | None
    valid_fw: np.ndarray | None
    valid_bw: np.ndarray | None
    fine_labels: np.ndarray | None = None
    domain: str = ""
    seed: int = 0
    index: int = 0
    fps: float = 17.0
    meta: dict = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def size(self) -> tuple[int, int]:
        return self.frames.shape[1:3]


@dataclass
class FrameRecord:
    """One frame of ``SyntheticWorld.iter_clip``; flows are those of pair (t, t+1) (None at the end)."""

    t: int
    frame: np.ndarray
    label: np.ndarray
    instances: np.ndarray
    fine_label: np.ndarray | None
    flow_fw: np.ndarray | None = None
    valid_fw: np.ndarray | None = None
    flow_bw: np.ndarray | None = None
    valid_bw: np.ndarray | None = None


class SyntheticWorld:
    """A procedural street world of one domain. ``world.clip(index)`` is a pure function of
    (domain, seed, index, size, fps, length): the same arguments give bit-identical arrays.

    Args:
        domain: ``city_a`` (source), ``city_b`` (target), ``city_c``, ``city_fine`` (see
            ``domains.py``).
        size: (H, W) of the rendered frames; the camera intrinsics scale with W.
        fps: frame rate; object and camera speeds are physical (m/s), so a lower fps means
            larger motion between frames.
        seed: the world's seed (textures, sprite variants, and with ``index`` every clip).
        fine_labels: also return the 32-class ``fine_labels`` (default: only for ``city_fine``).
    """

    def __init__(self, domain: str = "city_a", size: tuple[int, int] = (256, 512), fps: float = 17,
                 seed: int = 0, fine_labels: bool | None = None):
        self.dom = get_domain(domain)
        if len(size) != 2 or int(size[0]) < 16 or int(size[1]) < 16:
            raise ValueError(f"size must be (H, W) with H, W >= 16, got {size!r}")
        if not fps > 0:
            raise ValueError(f"fps must be > 0, got {fps!r}")
        self.domain, self.size, self.fps, self.seed = domain, (int(size[0]), int(size[1])), float(fps), int(seed)
        self.fine_labels = domain in FINE_BY_DEFAULT if fine_labels is None else bool(fine_labels)
        self.renderer = Renderer(self.size, hood=self.dom.hood)

    def __repr__(self) -> str:
        return (f"SyntheticWorld(domain={self.domain!r}, size={self.size}, fps={self.fps:g}, "
                f"seed={self.seed}, fine_labels={self.fine_labels})")

    @property
    def intrinsics(self) -> np.ndarray:
        """3x3 camera matrix K."""
        r = self.renderer
        return np.array([[r.f, 0, r.cx], [0, r.f, r.cy], [0, 0, 1]], np.float64)

    def params(self) -> dict:
        return {"domain": self.domain, "size": list(self.size), "fps": self.fps, "seed": self.seed,
                "fine_labels": self.fine_labels}

    # --- scene ---------------------------------------------------------------------------------
    def scene(self, index: int, length: int = 30) -> Scene:
        """The 3D content of clip ``index`` (street, textures, objects, camera path)."""
        if int(index) < 0:
            raise ValueError(f"clip index must be >= 0, got {index}")
        if int(length) < 1:
            raise ValueError(f"clip length must be >= 1, got {length}")
        dom = self.dom
        streams = np.random.SeedSequence([self.seed, dom.code, int(index)]).spawn(5)
        r_street, r_tex, r_cam, r_pop, r_sky = (np.random.default_rng(s) for s in streams)
        sides, lanes, lane_w = make_profile(dom, r_street)
        x0 = (int(r_cam.integers(lanes)) + 0.5) * lane_w
        cam = camera_path(dom, r_cam, int(length), self.fps, x0, lanes * lane_w)
        z_end = float(cam.z[-1]) + r_cam.uniform(*dom.end_distance)
        z0 = -5.0  # nothing behind the camera is ever in view (rays have dz > 0)
        cross = make_lots(dom, r_street, sides, z0, z_end)
        assets = world_assets(self.domain, self.seed)
        ground, gmat, gx0, gz0 = ground_map(assets.ground_tiles, r_tex, sides, cross, lanes, lane_w,
                                            z0, z_end, dom)
        planes = facade_planes(dom, assets, r_tex, sides, z0, z_end, -gx0)
        sky = cv2.cvtColor(np.roll(assets.sky, int(r_sky.integers(assets.sky.shape[1])), axis=1),
                           cv2.COLOR_RGB2RGBA)
        lib = sprite_library(self.domain, self.seed)
        objects = populate(dom, r_pop, lib, self.fps, int(length), sides, cross, lanes, lane_w, cam, z_end)
        info = {"lanes": lanes, "lane_width": lane_w, "cross_streets": cross,
                "road": [sd.road for sd in sides], "front": [sd.front for sd in sides]}
        return Scene(ground, gmat, gx0, gz0, planes, objects, sky, SKY_MAX_TAN, cam,
                     dom.fog_distance, dom.fog_color, z_end, lib.atlas, info)

    # --- clips ---------------------------------------------------------------------------------
    def _record(self, t: int, buf, inst: np.ndarray) -> FrameRecord:
        return FrameRecord(t, cv2.cvtColor(buf.rgb, cv2.COLOR_RGBA2RGB),
                           cv2.LUT(buf.fine, FINE_TO_TRAINID), np.take(inst, buf.sid),
                           buf.fine if self.fine_labels else None)

    @staticmethod
    def _instance_lut(scene: Scene) -> np.ndarray:
        """Surface id -> instance id (0 for stuff)."""
        inst = np.zeros(16 + len(scene.objects), np.int32)
        for o in scene.objects:
            inst[o.sid] = o.inst
        return inst

    def iter_clip(self, index: int, length: int = 30, flow: bool = True) -> Iterator[FrameRecord]:
        """Render clip ``index`` frame by frame, holding two frames at a time (use this rather
        than ``clip`` for large images: a 30-frame 1024x2048 clip with flows is ~1.5 GB)."""
        return self._iter(self.scene(index, length), length, flow)

    def _iter(self, scene: Scene, length: int, flow: bool) -> Iterator[FrameRecord]:
        r, inst = self.renderer, self._instance_lut(scene)
        cur = r.render(scene, 0)
        for t in range(length):
            nxt = r.render(scene, t + 1) if t + 1 < length else None
            rec = self._record(t, cur, inst)
            if flow and nxt is not None:
                rec.flow_fw, rec.valid_fw = r.flow(scene, cur, t, nxt, t + 1)
                rec.flow_bw, rec.valid_bw = r.flow(scene, nxt, t + 1, cur, t)
            yield rec
            cur = nxt

    def frames(self, index: int, times, length: int = 30) -> list[FrameRecord]:
        """Render only frames ``times`` of clip ``index`` (no flow): cheap sampling of many clips."""
        scene = self.scene(index, length)
        inst = self._instance_lut(scene)
        out = []
        for t in times:
            if not 0 <= int(t) < length:
                raise ValueError(f"frame {t} outside a clip of length {length}")
            out.append(self._record(int(t), self.renderer.render(scene, int(t)), inst))
        return out

    def clip(self, index: int, length: int = 30, flow: bool = True, only=None) -> Clip:
        """Render clip ``index`` (``length`` frames) into arrays; ``flow=False`` skips the flows.

        ``only``: render just these frame indices (no flow; the other frames stay black with void
        labels) — what an export without sequence frames needs, at a fraction of the cost."""
        H, W = self.size
        T = int(length)
        frames = np.zeros((T, H, W, 3), np.uint8)
        labels = np.full((T, H, W), 255, np.uint8)
        inst = np.zeros((T, H, W), np.int32)
        fine = np.full((T, H, W), 255, np.uint8) if self.fine_labels else None
        if only is not None:
            scene = self.scene(index, T)
            for rec in self.frames(index, only, T):
                frames[rec.t], labels[rec.t], inst[rec.t] = rec.frame, rec.label, rec.instances
                if fine is not None:
                    fine[rec.t] = rec.fine_label
            return Clip(frames, labels, inst, None, None, None, None, fine, self.domain, self.seed,
                        int(index), self.fps, self._meta(scene))
        nf = max(T - 1, 0)
        ffw = np.empty((nf, H, W, 2), np.float32) if flow else None
        fbw = np.empty((nf, H, W, 2), np.float32) if flow else None
        vfw = np.empty((nf, H, W), bool) if flow else None
        vbw = np.empty((nf, H, W), bool) if flow else None
        scene = self.scene(index, T)
        for rec in self._iter(scene, T, flow):
            t = rec.t
            frames[t], labels[t], inst[t] = rec.frame, rec.label, rec.instances
            if fine is not None:
                fine[t] = rec.fine_label
            if flow and rec.flow_fw is not None:
                ffw[t], vfw[t], fbw[t], vbw[t] = rec.flow_fw, rec.valid_fw, rec.flow_bw, rec.valid_bw
        return Clip(frames, labels, inst, ffw, fbw, vfw, vbw, fine, self.domain, self.seed,
                    int(index), self.fps, self._meta(scene))

    def _meta(self, scene: Scene) -> dict:
        cam = scene.camera
        return {"K": self.intrinsics.tolist(), "camera_height": cam.height,
                "camera_x": cam.x.tolist(), "camera_z": cam.z.tolist(), "camera_yaw": cam.yaw.tolist(),
                **scene.info}
