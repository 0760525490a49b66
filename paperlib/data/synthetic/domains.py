"""The world's domains: appearance (palette, texture, light, weather) and content statistics.

``city_a`` is the source domain, ``city_b`` the target domain of the transfer experiments,
``city_c`` a third (far) domain, ``city_fine`` the domain whose clips carry the 32-class fine
labels by default (new-class transfer; any domain can produce them with ``fine_labels=True``),
``camvid`` the world styled as CamVid (GSVNet's CamVid video rows: real CamVid has no video).

========== ============================== ================================================
domain      look                           content
========== ============================== ================================================
city_a      sunny, pastel plaster, grey    4-8 storey blocks, street trees, parked cars,
            asphalt, blue sky, hood        pedestrians; class frequencies tuned to
                                           Cityscapes' (see benchmarks/bench_world.py)
city_b      overcast, brick, dark wet      narrow streets, dense traffic, many cyclists
            asphalt, cool low-contrast,    and pedestrians, walls/fences, fewer trees
            higher camera, no hood
city_c      foggy dusk, warm light, haze   suburb: low houses, hedges, lawns, wide road,
                                           sparse traffic, more trucks
city_fine   bright, white/ochre, yellow    taxis, vans, scooters common; the default
            taxis                          fine-label domain
camvid      Cambridge (UK) daylight: pale  2-4 storey terraces, single lane each way,
            hazy sky, buff/red brick,      narrow pavements, many cyclists, fewer
            light asphalt, no hood         pedestrians than city_a, buses, no trams
========== ============================== ================================================

Being CamVid-styled (:data:`CAMVID_STYLED`) is a property of the domain *name*, like
:data:`FINE_BY_DEFAULT`, not a ``Domain`` field (the fields feed every world's cache keys): such
a domain's clips still carry Cityscapes train ids (map them with
``paperlib.data.labels.to_camvid``), ``paperlib.data.export_world`` writes it in CamVid's
SegNet layout with 11 classes, and :data:`CAMVID_SIZE` is CamVid's frame size. What the knobs
cannot express is left as is: traffic still keeps to the right (Cambridge drives on the left).
"""
from __future__ import annotations

from dataclasses import dataclass, field

RGB = tuple[int, int, int]


@dataclass(frozen=True)
class Domain:
    """All knobs of one domain. Colours are RGB 0..255; lengths in metres; object densities are
    expected counts per 100 m of street; probabilities per clip or per lot."""

    name: str
    code: int  # seeds the domain's random streams
    # --- appearance --------------------------------------------------------------------------
    sky_top: RGB
    sky_horizon: RGB
    clouds: float            # cloud cover 0..1
    cloud_color: RGB
    asphalt: RGB
    sidewalk: RGB
    curb: RGB
    grass: RGB
    gravel: RGB
    marking: RGB
    buildings: tuple[RGB, ...]
    glass: RGB
    wall: RGB
    fence: RGB
    tree: RGB
    hedge: RGB
    cars: tuple[RGB, ...]
    taxi: RGB
    clothes: tuple[RGB, ...]
    light: tuple[float, float, float] = (1.0, 1.0, 1.0)  # per-channel gain (colour of light)
    contrast: float = 1.0     # texture contrast (overcast < 1)
    shade: float = 0.72       # brightness of the facade side facing away from the sun
    fog_distance: float = 0.0  # metres for 63% fog (0 = no fog)
    fog_color: RGB = (200, 200, 200)
    texture_scale: float = 1.0  # >1: coarser textures
    # --- geometry ----------------------------------------------------------------------------
    camera_height: float = 1.22
    hood: bool = True         # ego-vehicle hood at the bottom (void), as in Cityscapes
    lanes: tuple[int, int] = (1, 2)      # lanes per direction (min, max)
    lane_width: tuple[float, float] = (3.0, 3.3)
    parking_lane: float = 0.55           # probability of a parking lane per side
    sidewalk_width: tuple[float, float] = (4.0, 7.0)
    verge: float = 0.5                  # probability of a grass strip between curb and walk
    building_height: tuple[float, float] = (14.0, 26.0)
    setback: tuple[float, float] = (0.0, 1.0)   # front plane behind the sidewalk edge
    back_distance: tuple[float, float] = (10.0, 25.0)  # back plane behind the front plane
    lots: dict = field(default_factory=lambda: {
        "building": 0.52, "glass_building": 0.05, "wall": 0.09, "fence": 0.16, "hedge": 0.07,
        "park": 0.06, "cross": 0.05})
    back_trees: float = 0.45  # probability that a back-plane block is trees
    end_distance: tuple[float, float] = (80.0, 150.0)  # street end beyond the last camera position
    # --- dynamic content (expected counts per 100 m of street) ------------------------------
    parked: float = 5.0
    traffic: float = 2.5       # moving vehicles, same direction
    oncoming: float = 2.5
    pedestrians: float = 30.0
    cyclists: float = 1.2
    motorcycles: float = 0.8
    parked_bicycles: float = 6.0  # bike racks / parked bicycles on the sidewalk
    crossing: float = 0.8      # pedestrians crossing the road
    trees: float = 12.0        # street trees
    traffic_lights: float = 1.5  # signal posts besides those at intersections
    streetlights: float = 5.0
    signs: float = 7.0
    poles: float = 6.0         # bare poles / bollard posts
    vehicle_mix: dict = field(default_factory=lambda: {
        "sedan": 0.81, "van": 0.12, "taxi": 0.03, "box_truck": 0.01, "pickup": 0.01,
        "bus": 0.015})
    tram: float = 0.07         # probability of a tram in a clip
    speed: tuple[float, float] = (4.0, 13.0)    # ego speed m/s
    yaw_amplitude: float = 5.0                  # degrees


DOMAINS: dict[str, Domain] = {
    "city_a": Domain(
        name="city_a", code=101,
        sky_top=(84, 132, 196), sky_horizon=(182, 204, 226), clouds=0.3,
        cloud_color=(236, 238, 242),
        asphalt=(104, 104, 108), sidewalk=(160, 150, 142), curb=(178, 176, 170),
        grass=(96, 136, 58), gravel=(150, 132, 104), marking=(228, 228, 222),
        buildings=((200, 184, 160), (178, 172, 164), (214, 200, 172), (160, 150, 140),
                   (196, 170, 150), (220, 214, 196)),
        glass=(70, 92, 112), wall=(150, 148, 140), fence=(92, 96, 90),
        tree=(66, 104, 44), hedge=(52, 92, 40),
        cars=((30, 30, 34), (200, 200, 204), (120, 124, 130), (40, 60, 110), (140, 30, 30),
              (230, 230, 230), (70, 80, 70)),
        taxi=(236, 230, 210),
        clothes=((40, 40, 48), (120, 30, 40), (40, 70, 130), (200, 190, 170), (80, 80, 80),
                 (30, 90, 60)),
        light=(1.04, 1.0, 0.95), contrast=1.0, shade=0.7,
    ),
    "city_b": Domain(
        name="city_b", code=202,
        sky_top=(150, 156, 164), sky_horizon=(196, 198, 202), clouds=0.9,
        cloud_color=(174, 176, 182),
        asphalt=(70, 72, 78), sidewalk=(128, 112, 106), curb=(140, 138, 136),
        grass=(80, 112, 64), gravel=(112, 104, 90), marking=(200, 202, 200),
        buildings=((146, 72, 56), (120, 60, 50), (164, 96, 70), (96, 70, 60), (176, 120, 96)),
        glass=(54, 64, 74), wall=(118, 96, 88), fence=(60, 64, 60),
        tree=(58, 88, 52), hedge=(46, 76, 44),
        cars=((20, 20, 24), (170, 172, 176), (90, 96, 104), (30, 40, 80), (110, 20, 24),
              (200, 200, 200)),
        taxi=(30, 30, 30),
        clothes=((30, 30, 34), (60, 60, 70), (20, 40, 80), (100, 40, 30), (140, 140, 140)),
        light=(0.92, 0.96, 1.04), contrast=0.65, shade=0.88,
        camera_height=1.35, hood=False,
        lanes=(1, 1), lane_width=(2.8, 3.2), parking_lane=0.8, sidewalk_width=(2.0, 3.5),
        verge=0.1, building_height=(10.0, 18.0), setback=(0.0, 0.3),
        lots={"building": 0.62, "glass_building": 0.02, "wall": 0.12, "fence": 0.1,
              "hedge": 0.04, "park": 0.04, "cross": 0.06},
        back_trees=0.2,
        parked=8.0, traffic=3.0, oncoming=3.0, pedestrians=36.0, cyclists=3.0,
        motorcycles=0.2, crossing=1.0, trees=2.5, streetlights=4.0, signs=4.0, poles=4.0,
        tram=0.08, speed=(3.0, 9.0), yaw_amplitude=7.0,
    ),
    "city_c": Domain(
        name="city_c", code=303,
        sky_top=(196, 150, 136), sky_horizon=(236, 196, 150), clouds=0.5,
        cloud_color=(220, 170, 150),
        asphalt=(96, 88, 86), sidewalk=(150, 140, 124), curb=(164, 156, 140),
        grass=(120, 130, 60), gravel=(160, 130, 96), marking=(226, 210, 170),
        buildings=((220, 196, 170), (200, 180, 150), (180, 160, 150), (230, 220, 200)),
        glass=(90, 80, 90), wall=(170, 150, 130), fence=(120, 96, 70),
        tree=(86, 100, 46), hedge=(66, 92, 42),
        cars=((40, 36, 36), (210, 206, 200), (150, 140, 130), (90, 40, 30), (60, 80, 100)),
        taxi=(230, 200, 40),
        clothes=((60, 50, 50), (150, 90, 60), (70, 90, 110), (190, 170, 140)),
        light=(1.12, 0.96, 0.82), contrast=0.85, shade=0.6,
        fog_distance=140.0, fog_color=(214, 190, 176), texture_scale=1.4,
        camera_height=1.15, hood=True,
        lanes=(1, 2), lane_width=(3.3, 3.8), parking_lane=0.3, sidewalk_width=(1.8, 3.0),
        verge=0.8, building_height=(6.0, 10.0), setback=(2.0, 6.0), back_distance=(8.0, 20.0),
        lots={"building": 0.35, "glass_building": 0.0, "wall": 0.08, "fence": 0.12,
              "hedge": 0.2, "park": 0.2, "cross": 0.05},
        back_trees=0.6,
        parked=4.0, traffic=1.5, oncoming=2.0, pedestrians=3.0, cyclists=0.4,
        motorcycles=0.1, crossing=0.2, trees=8.0, streetlights=2.5, signs=2.0, poles=1.5,
        vehicle_mix={"sedan": 0.58, "van": 0.12, "taxi": 0.01, "box_truck": 0.12,
                     "pickup": 0.12, "bus": 0.03},
        tram=0.0, speed=(8.0, 15.0), yaw_amplitude=4.0,
    ),
    "city_fine": Domain(
        name="city_fine", code=404,
        sky_top=(70, 140, 220), sky_horizon=(170, 206, 236), clouds=0.1,
        cloud_color=(240, 240, 244),
        asphalt=(90, 90, 96), sidewalk=(196, 186, 168), curb=(210, 206, 196),
        grass=(130, 150, 70), gravel=(186, 160, 120), marking=(240, 240, 236),
        buildings=((236, 226, 204), (226, 196, 140), (214, 170, 110), (240, 236, 226),
                   (200, 150, 110)),
        glass=(60, 90, 120), wall=(206, 190, 160), fence=(70, 70, 76),
        tree=(76, 110, 40), hedge=(60, 100, 40),
        cars=((220, 220, 220), (30, 30, 30), (150, 150, 156), (170, 40, 40), (50, 80, 140)),
        taxi=(240, 196, 20),
        clothes=((240, 240, 240), (30, 30, 40), (200, 60, 60), (60, 120, 180), (220, 180, 120)),
        light=(1.06, 1.02, 0.96), contrast=1.1, shade=0.62,
        camera_height=1.25, hood=True, building_height=(10.0, 20.0),
        pedestrians=12.0, cyclists=0.8, motorcycles=1.5, traffic=3.0, oncoming=3.0,
        vehicle_mix={"sedan": 0.45, "van": 0.2, "taxi": 0.2, "box_truck": 0.05,
                     "pickup": 0.04, "bus": 0.04},
        tram=0.04, speed=(3.0, 11.0),
    ),
    "camvid": Domain(
        name="camvid", code=505,
        sky_top=(126, 160, 204), sky_horizon=(206, 216, 228), clouds=0.55,
        cloud_color=(226, 228, 232),
        asphalt=(112, 110, 112), sidewalk=(150, 146, 140), curb=(170, 168, 162),
        grass=(92, 130, 60), gravel=(146, 134, 112), marking=(224, 224, 216),
        buildings=((206, 186, 144), (190, 170, 130), (152, 84, 64), (176, 108, 80),
                   (226, 222, 210), (170, 160, 150)),
        glass=(66, 80, 96), wall=(186, 166, 128), fence=(80, 84, 80),
        tree=(62, 98, 46), hedge=(50, 88, 42),
        cars=((30, 30, 34), (196, 196, 200), (120, 124, 130), (30, 50, 100), (130, 26, 30),
              (226, 226, 226), (60, 72, 64)),
        taxi=(30, 30, 30),
        clothes=((36, 36, 44), (110, 30, 40), (40, 64, 120), (180, 170, 150), (90, 90, 90),
                 (30, 80, 56)),
        light=(0.96, 0.97, 0.98), contrast=0.9, shade=0.78,
        camera_height=1.3, hood=False,
        lanes=(1, 1), lane_width=(3.0, 3.4), parking_lane=0.45, sidewalk_width=(2.0, 4.0),
        verge=0.3, building_height=(8.0, 15.0), setback=(0.0, 2.0),
        parked=6.0, traffic=2.5, oncoming=3.0, pedestrians=16.0, cyclists=2.5,
        motorcycles=0.3, parked_bicycles=8.0, trees=10.0,
        vehicle_mix={"sedan": 0.74, "van": 0.14, "taxi": 0.02, "box_truck": 0.03,
                     "pickup": 0.02, "bus": 0.05},
        tram=0.0, speed=(3.0, 11.0),
    ),
}

#: Domains whose clips carry fine labels unless told otherwise.
FINE_BY_DEFAULT = frozenset({"city_fine"})

#: Domains styled as CamVid: exported in CamVid's SegNet layout with its 11 classes.
CAMVID_STYLED = frozenset({"camvid"})

#: CamVid's frame size (H, W) in the SegNet release (the raw video is 720x960).
CAMVID_SIZE: tuple[int, int] = (360, 480)


def get_domain(name: str) -> Domain:
    """Look a domain up by name; ``ValueError`` lists the known ones."""
    try:
        return DOMAINS[name]
    except KeyError:
        raise ValueError(f"unknown domain {name!r}; expected one of {sorted(DOMAINS)}") from None
