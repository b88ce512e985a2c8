"""The 'hard' scene preset: a furnished room seen by a headset or robot camera.

What makes it hard (every property is drawn here, before any detector looks at it):
- 12 classes = 4 shapes (box, cylinder, sphere, cone) x 3 surface patterns (stripes, checker,
  dots); each object's colours are drawn independently of its class, so only shape AND
  surface tell classes apart;
- distractors that belong to no class: pyramids with any pattern, class shapes with a plain or
  grainy surface, and patterned posters on the walls; furniture-like blocks (cabinets, shelves,
  tables) along the walls and in the room;
- objects anywhere in the room, so they are seen at 1-8 m and many are small; a light whose
  direction, ambient share, colour tint and exposure change per room; sensor noise and mild
  motion blur per frame.

One `Room` is a persistent world (floor y = 0, walls at x, z = +-half); a frame is the room
seen from a `Pose` at a time (some objects slide across the floor), so single frames for
training and continuous camera walks (`data/walk.py`) come from the same distribution.
Frames: world W (x right, y up, z forward), camera optical frame C (x right, y down, z forward).
"""

from __future__ import annotations

import colorsys
from dataclasses import dataclass, replace

import numpy as np

from neulens_ros.data.raycast import box_in_camera, candidate_pixels, texture_at, visible_box
from neulens_ros.data.scene_types import Scene, SceneConfig, SceneObject, textures
from neulens_ros.data.shapes import CLASSES as GEOMETRIES
from neulens_ros.data.shapes import Shape, yaw_matrix

HARD_SHAPES = ('box', 'cylinder', 'sphere', 'cone')
SURFACES = ('stripes', 'checker', 'dots')
HARD_CLASSES = tuple(f'{shape}_{surface}' for shape in HARD_SHAPES for surface in SURFACES)
DISTRACTOR_SURFACES = ('plain', 'grain')
# Objects of interest per room (the camera sees about a third of the room at a time).
ROOM_OBJECTS = {'dense': (44, 60), 'sparse': (18, 26)}
# (min, max) of (width, height) in metres, as in the easy preset; depth = width if round.
SIZES = {'box': ((0.3, 0.8), (0.25, 0.8)), 'cylinder': ((0.2, 0.5), (0.4, 1.1)),
         'sphere': ((0.25, 0.7), (0.0, 0.0)), 'cone': ((0.3, 0.6), (0.4, 0.9)),
         'pyramid': ((0.35, 0.8), (0.3, 0.7))}
ROUND = ('sphere', 'cylinder', 'cone')
SCALE = (0.6, 1.1)  # every solid's sizes are scaled by one factor drawn from this range
PERIODS = (1.3, 1.8)  # pattern periods across an object's largest side
DARK = 0.2  # brightness of a pattern's dark parts relative to its light parts
MOVING_SHARE = 0.25  # share of objects of interest that slide across the floor
SPEED = (0.2, 0.8)  # m/s of a moving object


@dataclass(frozen=True)
class Item:
    """A solid in the room: an object of interest (label >= 0), a distractor or furniture."""

    shape: Shape
    label: int  # class id in HARD_CLASSES; -1 = belongs to no class
    surface: str  # one of SURFACES + DISTRACTOR_SURFACES
    colour: tuple[float, float, float]  # RGB 0..1 of the light parts of the pattern
    period: float  # metres
    velocity: tuple[float, float] = (0.0, 0.0)  # m/s along world x, z
    furniture: bool = False  # background clutter rather than an object-sized distractor

    def at(self, time_s: float, half: float) -> 'Item':
        """Where the item is `time_s` seconds in (it bounces off the walls)."""
        if self.velocity == (0.0, 0.0):
            return self
        margin = 0.5 * max(self.shape.size[0], self.shape.size[2])
        x = _bounce(self.shape.x + self.velocity[0] * time_s, half - margin)
        z = _bounce(self.shape.z + self.velocity[1] * time_s, half - margin)
        return replace(self, shape=replace(self.shape, x=x, z=z))


@dataclass(frozen=True)
class Poster:
    """A patterned rectangle on a wall (a distractor with texture and no shape)."""

    wall: int  # 0: x = +half, 1: x = -half, 2: z = +half, 3: z = -half
    along: tuple[float, float]  # metres along the wall
    up: tuple[float, float]  # metres above the floor
    surface: str
    colour: tuple[float, float, float]
    period: float


@dataclass(frozen=True)
class Room:
    """A persistent world: the items, the walls' and floor's look, the light."""

    half: float  # the room spans [-half, half] in x and z, metres
    items: tuple[Item, ...]
    posters: tuple[Poster, ...]
    floor_texture: int
    wall_texture: int
    floor_rgb: tuple[float, float, float]
    wall_rgb: tuple[float, float, float]
    light: tuple[float, float, float]  # unit vector towards the light, world frame
    ambient: float  # 0..1 share of light that reaches every surface
    tint: tuple[float, float, float]  # white balance x exposure per channel

    def at(self, time_s: float) -> tuple[Item, ...]:
        return tuple(item.at(time_s, self.half) for item in self.items)


@dataclass(frozen=True)
class Pose:
    """Where the camera is: footprint position, heading, downward pitch and height."""

    x: float  # metres
    z: float  # metres
    yaw: float  # radians about world y; 0 looks along +z
    pitch_deg: float  # downward tilt
    height: float  # metres above the floor

    def origin(self) -> np.ndarray:
        return np.array([self.x, self.height, self.z])

    def camera_to_world(self) -> np.ndarray:
        """[3, 3] rotation of optical-frame vectors into the world frame."""
        a = np.deg2rad(self.pitch_deg)
        pitch = np.array([[1.0, 0.0, 0.0], [0.0, np.cos(a), -np.sin(a)],
                          [0.0, np.sin(a), np.cos(a)]])
        return yaw_matrix(self.yaw) @ pitch @ np.diag([1.0, -1.0, 1.0])


def _bounce(value: float, limit: float) -> float:
    """`value` reflected into [-limit, limit] (a triangle wave)."""
    span = 4.0 * limit
    v = (value + limit) % span
    return float(v - limit if v <= 2.0 * limit else 3.0 * limit - v)


def _colour(rng: np.random.Generator) -> tuple[float, float, float]:
    """A colour drawn independently of any class: random hue, saturation and value."""
    rgb = colorsys.hsv_to_rgb(rng.random(), rng.uniform(0.25, 0.9), rng.uniform(0.45, 0.95))
    return tuple(float(c) for c in rgb)


def _solid(kind: str, rng: np.random.Generator, x: float, z: float) -> Shape:
    """A solid of `kind`, scaled as a whole by SCALE (small household objects to large)."""
    (w_lo, w_hi), (h_lo, h_hi) = SIZES[kind]
    scale = rng.uniform(*SCALE)
    width = float(rng.uniform(w_lo, w_hi) * scale)
    height = width if kind == 'sphere' else float(rng.uniform(h_lo, h_hi) * scale)
    depth = width if kind in ROUND else float(rng.uniform(w_lo, w_hi) * scale)
    return Shape(GEOMETRIES.index(kind), x, z, (width, height, depth),
                 float(rng.uniform(0, np.pi)))


def _furniture(rng: np.random.Generator, half: float, count: int) -> list[Item]:
    """Cabinets and shelves against the walls, tables inside the room (plain boxes)."""
    items = []
    for i in range(count):
        kind = ('cabinet', 'shelf', 'table')[i % 3]
        width = float(rng.uniform(0.8, 2.0))
        depth, height = {'cabinet': (0.6, rng.uniform(0.7, 1.1)),
                         'shelf': (0.4, rng.uniform(1.5, 2.1)),
                         'table': (rng.uniform(0.7, 1.0), rng.uniform(0.7, 0.8))}[kind]
        if kind == 'table':
            x, z, yaw = (*rng.uniform(-0.6, 0.6, 2) * half, float(rng.uniform(0, np.pi)))
        else:
            wall = int(rng.integers(4))
            along = float(rng.uniform(-0.8, 0.8) * half)
            off = half - depth / 2.0 - 0.05
            x, z = [(off, along), (-off, along), (along, off), (along, -off)][wall]
            yaw = np.pi / 2 if wall < 2 else 0.0
        shape = Shape(GEOMETRIES.index('box'), float(x), float(z),
                      (width, float(height), float(depth)), float(yaw))
        grey = rng.uniform(0.3, 0.75)
        items.append(Item(shape, -1, 'grain', (grey * 1.1, grey, grey * 0.8), 1.0,
                          furniture=True))
    return items


def _free(shape: Shape, taken: list[Item], gap: float = 0.1) -> bool:
    radius = 0.5 * np.hypot(shape.size[0], shape.size[2])
    return all(np.hypot(t.shape.x - shape.x, t.shape.z - shape.z)
               > radius + 0.5 * np.hypot(t.shape.size[0], t.shape.size[2]) + gap
               for t in taken)


def _scatter(rng: np.random.Generator, half: float, count: int, taken: list[Item],
             distractor: bool) -> list[Item]:
    """`count` objects of interest (or distractors) at free places on the floor."""
    items: list[Item] = []
    for _ in range(count * 20):
        if len(items) == count:
            break
        x, z = rng.uniform(-half + 0.6, half - 0.6, 2)
        if distractor:
            kind = 'pyramid' if rng.random() < 0.4 else HARD_SHAPES[rng.integers(4)]
            surface = (SURFACES[rng.integers(3)] if kind == 'pyramid'
                       else DISTRACTOR_SURFACES[rng.integers(2)])
            label = -1
        else:
            label = int(rng.integers(len(HARD_CLASSES)))
            kind, surface = HARD_CLASSES[label].split('_')
        shape = _solid(kind, rng, float(x), float(z))
        if not _free(shape, taken + items):
            continue
        moving = not distractor and rng.random() < MOVING_SHARE
        heading = rng.uniform(0, 2 * np.pi)
        speed = rng.uniform(*SPEED) if moving else 0.0
        items.append(Item(shape, label, surface, _colour(rng),
                          max(shape.size) / rng.uniform(*PERIODS),
                          (float(speed * np.cos(heading)), float(speed * np.sin(heading)))))
    return items


def _posters(rng: np.random.Generator, half: float) -> tuple[Poster, ...]:
    out = []
    for _ in range(int(rng.integers(3, 8))):
        w, h = rng.uniform(0.5, 1.4), rng.uniform(0.4, 1.0)
        a = rng.uniform(-half + 1.0, half - 1.0 - w)
        b = rng.uniform(0.9, 2.3 - h)
        out.append(Poster(int(rng.integers(4)), (float(a), float(a + w)), (float(b), float(b + h)),
                          (SURFACES + DISTRACTOR_SURFACES)[rng.integers(5)], _colour(rng),
                          float(max(w, h) / rng.uniform(3, 6))))
    return tuple(out)


def generate_room(config: SceneConfig, rng: np.random.Generator) -> Room:
    """A furnished room with objects of interest and distractors; the density of
    `config` picks how many objects."""
    density = config.density if config.density != 'mixed' else (
        'dense' if rng.random() < 0.5 else 'sparse')
    half = float(rng.uniform(4.0, 5.5))
    taken = _furniture(rng, half, int(rng.integers(5, 10)))
    objects = _scatter(rng, half, int(rng.integers(*ROOM_OBJECTS[density])), taken, False)
    distractors = _scatter(rng, half, int(rng.integers(8, 18)), taken + objects, True)
    elevation, azimuth = rng.uniform(0.5, 1.4), rng.uniform(0, 2 * np.pi)
    light = (np.cos(elevation) * np.sin(azimuth), np.sin(elevation),
             np.cos(elevation) * np.cos(azimuth))
    floor_tex, wall_tex = rng.choice(len(textures()), 2, replace=False)
    tint = rng.uniform(0.88, 1.12, 3) * rng.uniform(0.85, 1.25)
    return Room(half=half, items=tuple(objects + distractors + taken),
                posters=_posters(rng, half), floor_texture=int(floor_tex),
                wall_texture=int(wall_tex),
                floor_rgb=tuple(float(c) for c in rng.uniform(0.3, 0.75, 3)),
                wall_rgb=tuple(float(c) for c in rng.uniform(0.4, 0.85, 3)),
                light=tuple(float(c) for c in light), ambient=float(rng.uniform(0.3, 0.55)),
                tint=tuple(float(c) for c in tint))


def random_pose(room: Room, rng: np.random.Generator) -> Pose:
    """A camera pose inside the room, at least a metre from every item: a standing or seated
    headset (1.1-1.7 m) or a robot (0.6-1.1 m) looking slightly down."""
    for _ in range(200):
        x, z = rng.uniform(-room.half + 1.5, room.half - 1.5, 2)
        if all(np.hypot(i.shape.x - x, i.shape.z - z) > 1.0 + 0.5 * max(i.shape.size)
               for i in room.items):
            break
    height = float(rng.uniform(1.1, 1.7) if rng.random() < 0.7 else rng.uniform(0.6, 1.1))
    return Pose(float(x), float(z), float(rng.uniform(0, 2 * np.pi)),
                float(rng.uniform(8.0, 25.0)), height)


def pattern(surface: str, p: np.ndarray, period: float) -> np.ndarray:
    """Pattern value 0..1 (1 = light colour) at object-frame points p [N, 3] (metres)."""
    q = p / period
    if surface == 'stripes':
        return (np.floor(q[:, 1] * 2.0) % 2).astype(np.float64)
    if surface == 'checker':
        return (np.floor(q).sum(axis=1) % 2).astype(np.float64)
    if surface == 'dots':
        return (np.linalg.norm(q - np.round(q), axis=1) > 0.32).astype(np.float64)
    if surface == 'grain':
        return texture_at(textures()[0], q[:, 0] + q[:, 2], q[:, 1], 1.0)
    return np.ones(len(p))


def _patterned(surface: str, p: np.ndarray, period: float,
               colour: tuple[float, float, float]) -> np.ndarray:
    """[N, 3] albedo at pattern-frame points p [N, 3]: `colour` where the pattern is 1, a
    darker shade of it (DARK) where it is 0."""
    shade = DARK + (1.0 - DARK) * pattern(surface, p, period)
    return shade[:, None] * np.asarray(colour)


def _surface_colour(item: Item, p_world: np.ndarray) -> np.ndarray:
    """[N, 3] albedo of `item` at world points [N, 3]."""
    rot = yaw_matrix(item.shape.yaw)
    p = (p_world - np.array([item.shape.x, 0.0, item.shape.z])) @ rot  # object frame
    return _patterned(item.surface, p, item.period, item.colour)


def _background(room: Room, origin: np.ndarray, dirs: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Ray parameter [N], albedo [N, 3] and normal [N, 3] of the floor and the four walls."""
    half = room.half
    with np.errstate(divide='ignore', invalid='ignore'):
        planes = [np.where(dirs[:, 1] < -1e-9, -origin[1] / dirs[:, 1], np.inf)]  # floor
        for axis in (0, 2):
            for sign in (1.0, -1.0):
                d = dirs[:, axis]
                t = (sign * half - origin[axis]) / d
                planes.append(np.where(t > 1e-9, t, np.inf))
    ts = np.stack(planes, axis=1)  # [N, 5]: floor, x+, x-, z+, z-
    which = ts.argmin(axis=1)
    t = ts[np.arange(len(ts)), which]
    p = origin + dirs * np.where(np.isfinite(t), t, 0.0)[:, None]
    tex = textures()
    floor_shade = texture_at(tex[room.floor_texture], p[:, 0], p[:, 2], 0.8)
    wall_u = np.where(which <= 2, p[:, 2], p[:, 0])
    wall_shade = texture_at(tex[room.wall_texture], wall_u, p[:, 1], 1.2)
    albedo = np.where((which == 0)[:, None], floor_shade[:, None] * room.floor_rgb,
                      wall_shade[:, None] * room.wall_rgb)
    for poster in room.posters:
        wall_index = poster.wall + 1
        inside = ((which == wall_index) & (wall_u >= poster.along[0])
                  & (wall_u <= poster.along[1]) & (p[:, 1] >= poster.up[0])
                  & (p[:, 1] <= poster.up[1]))
        if inside.any():
            q = np.stack([wall_u[inside], p[inside, 1], np.zeros(int(inside.sum()))], axis=1)
            albedo[inside] = _patterned(poster.surface, q, poster.period, poster.colour)
    normals = np.array([[0, 1, 0], [-1, 0, 0], [1, 0, 0], [0, 0, -1], [0, 0, 1]],
                       np.float64)[which]
    return t, albedo, normals


def render_room(config: SceneConfig, room: Room, pose: Pose, seed: int = 0,
                time_s: float = 0.0) -> Scene:
    """The room seen from `pose` at `time_s` (deterministic for a seed: it draws the sensor
    noise and blur). Only objects of interest are in `objects` and the masks; their
    `track_id` is their index in `room.items`, stable over a walk."""
    return render_room_owners(config, room, pose, seed, time_s)[0]


def render_room_owners(config: SceneConfig, room: Room, pose: Pose, seed: int = 0,
                       time_s: float = 0.0) -> tuple[Scene, np.ndarray]:
    """`render_room`, plus which item every pixel sees ([H, W] int32: 0 = floor or wall,
    i + 1 = room.items[i]), distractors and furniture included."""
    rng = np.random.default_rng([seed, 2])
    cam = config.camera()
    rot, origin = pose.camera_to_world(), pose.origin()
    v, u = np.mgrid[0:cam.height, 0:cam.width]
    dirs = cam.rays(u, v).reshape(-1, 3) @ rot.T  # [N, 3] world; optical z = 1, so t = depth
    t_bg, albedo, normals = _background(room, origin, dirs)
    t_best = t_bg.copy()
    owner = np.zeros(len(dirs), np.int32)  # 0 background, i + 1 = items[i]
    items = room.at(time_s)
    own_pixels = np.zeros(len(items), np.int64)
    for i, item in enumerate(items):
        idx = candidate_pixels(item.shape, cam, rot, origin)
        if not len(idx):
            continue
        t, n = item.shape.hit(origin, dirs[idx])
        own_pixels[i] = int((t < t_bg[idx]).sum())
        front = t < t_best[idx]
        pix = idx[front]
        t_best[pix], owner[pix], normals[pix] = t[front], i + 1, n[front]
    for i, item in enumerate(items):
        pix = np.nonzero(owner == i + 1)[0]
        if len(pix):
            albedo[pix] = _surface_colour(item, origin + dirs[pix] * t_best[pix, None])
    lambert = np.clip(normals @ np.asarray(room.light), 0.0, 1.0)
    colour = albedo * (room.ambient + (1.0 - room.ambient) * lambert)[:, None]
    rgb = _sensor(colour.reshape(cam.height, cam.width, 3) * room.tint, rng)
    depth = np.where(np.isfinite(t_best), t_best, np.nan).astype(np.float32)
    objects, masks = _ground_truth(items, owner.reshape(cam.height, cam.width), own_pixels,
                                   rot, origin, pose.yaw)
    scene = Scene(rgb=rgb, depth=depth.reshape(cam.height, cam.width), masks=masks,
                  camera=cam, objects=objects, seed=seed,
                  up=tuple(float(c) for c in rot.T @ [0.0, 1.0, 0.0]))
    return scene, owner.reshape(cam.height, cam.width)


def _sensor(linear: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """[H, W, 3] 0..1 -> uint8 with mild motion blur (half the frames, 1-3 px along a random
    direction) and Gaussian noise (sigma 2-5 grey levels)."""
    image = linear
    if rng.random() < 0.5:
        length = int(rng.integers(1, 4))
        angle = rng.uniform(0, np.pi)
        dx, dy = np.cos(angle), np.sin(angle)
        shifted = [np.roll(image, (int(round(s * dy)), int(round(s * dx))), axis=(0, 1))
                   for s in range(-length, length + 1)]
        image = np.mean(shifted, axis=0)
    noisy = image * 255.0 + rng.normal(0.0, rng.uniform(2.0, 5.0), image.shape)
    return np.clip(noisy, 0, 255).astype(np.uint8)


def _ground_truth(items: tuple[Item, ...], owner: np.ndarray, own_pixels: np.ndarray,
                  cam_to_world: np.ndarray, origin: np.ndarray, camera_yaw: float
                  ) -> tuple[tuple[SceneObject, ...], np.ndarray]:
    """Objects of interest with any visible pixel, and the masks renumbered to them."""
    masks = np.zeros(owner.shape, np.int32)
    objects = []
    for i, item in enumerate(items):
        mask = owner == i + 1
        if item.label < 0 or not own_pixels[i] or not mask.any():
            continue
        box, visible = visible_box(mask)
        masks[mask] = len(objects) + 1
        shape = item.shape
        objects.append(SceneObject(
            class_id=item.label, class_name=HARD_CLASSES[item.label], box2d=box,
            visible_pixels=visible, visibility=visible / own_pixels[i],
            yaw=float(shape.yaw - camera_yaw), track_id=i,
            **box_in_camera(shape, cam_to_world, origin)))
    return tuple(objects), masks


def room_of_seed(config: SceneConfig, seed: int) -> tuple[Room, Pose]:
    """The room and camera pose of a single hard-preset frame."""
    rng = np.random.default_rng([seed, 0])
    room = generate_room(config, rng)
    return room, random_pose(room, rng)


def generate_room_scene(config: SceneConfig, seed: int) -> Scene:
    """One frame of the hard preset: a room of its own seen from a random pose."""
    return render_room(config, *room_of_seed(config, seed), seed)
