"""Continuous sequences: a headset or robot camera moving through one persistent room.

The body walks at walking speed with smooth turns, steering back when it nears a wall or an
item; the head looks around it (yaw offsets of up to 60 degrees, the camera's total turn rate
capped, 90 deg/s by default) and nods slowly. Some objects slide across the floor
(`data/room.py`). Every frame carries its ground truth, each object with a `track_id` that is
stable over the sequence.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np

from neulens_ros.data.room import Item, Pose, Room, generate_room, render_room
from neulens_ros.data.scene_types import Scene, SceneConfig
from neulens_ros.errors import ConfigError

HEAD_OFFSET_DEG = 60.0  # the head turns at most this far from the walking direction
BODY_TURN = np.deg2rad(60.0)  # rad/s of the body turning on the spot where it is blocked
CLEARANCE_M = 0.6  # the body keeps this far from furniture (and a third of it from objects)


@dataclass(frozen=True)
class WalkConfig:
    """How the camera moves; validated on creation."""

    fps: float = 10.0  # frames per second
    frames: int = 300  # frames per sequence
    speed: tuple[float, float] = (0.5, 1.4)  # m/s of the body, drawn per sequence
    max_turn_deg_s: float = 90.0  # cap on the camera's yaw rate
    robot_share: float = 0.3  # share of sequences from a robot's height (0.6-1.0 m)

    def __post_init__(self) -> None:
        problems = []
        if not 0.5 <= self.fps <= 120.0:
            problems.append(f'fps {self.fps} is outside 0.5..120')
        if self.frames < 1:
            problems.append(f'frames {self.frames} must be >= 1')
        if not 0.0 <= self.speed[0] <= self.speed[1] <= 3.0:
            problems.append(f'speed {self.speed} needs 0 <= min <= max <= 3 m/s')
        if not 0.0 < self.max_turn_deg_s <= 360.0:
            problems.append(f'max_turn_deg_s {self.max_turn_deg_s} is outside (0, 360]')
        if not 0.0 <= self.robot_share <= 1.0:
            problems.append(f'robot_share {self.robot_share} is outside 0..1')
        if problems:
            raise ConfigError('invalid WalkConfig: ' + '; '.join(problems))


def _blocked(half: float, items: tuple[Item, ...], x: float, z: float) -> bool:
    """Whether the body at (x, z) is too near a wall of the room (half size `half`) or one of
    `items` (where they are at that moment)."""
    if max(abs(x), abs(z)) > half - 1.2:
        return True
    return any(np.hypot(i.shape.x - x, i.shape.z - z)
               < CLEARANCE_M / (1.0 if i.furniture else 3.0)
               + 0.5 * np.hypot(i.shape.size[0], i.shape.size[2])
               for i in items)


def _start(room: Room, rng: np.random.Generator) -> tuple[float, float]:
    for _ in range(500):
        x, z = rng.uniform(-room.half + 1.2, room.half - 1.2, 2)
        if not _blocked(room.half, room.items, float(x), float(z)):
            return float(x), float(z)
    return 0.0, 0.0


def _free_heading(half: float, items: tuple[Item, ...], x: float, z: float, heading: float,
                  step: float, rng: np.random.Generator) -> float:
    """The heading nearest the current one (left or right first at random) whose next step is
    free; the opposite heading when none is."""
    sign = 1.0 if rng.random() < 0.5 else -1.0
    for delta in np.deg2rad(np.arange(20.0, 180.0, 20.0)):
        for h in (heading + sign * delta, heading - sign * delta):
            if not _blocked(half, items, x + step * np.sin(h), z + step * np.cos(h)):
                return float(h)
    return float(heading + np.pi)


def camera_path(room: Room, walk: WalkConfig, rng: np.random.Generator) -> list[Pose]:
    """One pose per frame: the body's position and heading, plus the head's offsets."""
    dt = 1.0 / walk.fps
    max_step = np.deg2rad(walk.max_turn_deg_s) * dt  # radians per frame
    x, z = _start(room, rng)
    heading = float(rng.uniform(0, 2 * np.pi))
    speed = float(rng.uniform(*walk.speed))
    height = float(rng.uniform(0.6, 1.0) if rng.random() < walk.robot_share
                   else rng.uniform(1.4, 1.75))
    turn, head, nod = 0.0, 0.0, float(rng.uniform(10.0, 22.0))
    yaw = heading
    poses = []
    for i in range(walk.frames):
        turn = 0.9 * turn + rng.normal(0.0, 0.15)  # rad/s of the body, smooth
        nx, nz = x + speed * dt * np.sin(heading), z + speed * dt * np.cos(heading)
        items = room.at(i * dt)
        if _blocked(room.half, items, nx, nz):  # stop and turn towards a free way, smoothly
            free = _free_heading(room.half, items, x, z, heading, speed * dt, rng)
            heading += float(np.clip(np.angle(np.exp(1j * (free - heading))),
                                     -BODY_TURN * dt, BODY_TURN * dt))
            turn = 0.0
        else:
            x, z = float(nx), float(nz)
            heading += turn * dt
        head = float(np.clip(0.97 * head + rng.normal(0.0, 0.03), -1.0, 1.0))
        target = heading + np.deg2rad(HEAD_OFFSET_DEG) * head
        yaw += float(np.clip(np.angle(np.exp(1j * (target - yaw))), -max_step, max_step))
        nod = float(np.clip(nod + rng.normal(0.0, 0.4), 8.0, 25.0))
        poses.append(Pose(x, z, yaw, nod, height))
    return poses


def walk_scenes(config: SceneConfig, seed: int, walk: WalkConfig = WalkConfig()
                ) -> Iterator[Scene]:
    """The frames of sequence `seed`: its room, seen along its camera path. Frame i is at
    i / fps seconds; its sensor noise is drawn from (seed, i)."""
    rng = np.random.default_rng([seed, 3])
    room = generate_room(config, rng)
    for i, pose in enumerate(camera_path(room, walk, rng)):
        yield render_room(config, room, pose, seed * 100_000 + i, i / walk.fps)
