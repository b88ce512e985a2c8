"""Lifting evaluation on generated scenes with ground-truth 2D boxes (or a detector's)."""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager, nullcontext
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from neulens_ros.data.camera import PinholeCamera
from neulens_ros.data.scenes import (Scene, SceneConfig, class_names, generate_scene, render,
                                     sample_shapes)
from neulens_ros.errors import DataError
from neulens_ros.lifting.boxes import YawBox, gravity_frame, iou_3d
from neulens_ros.lifting.extrinsics import RigidTransform
from neulens_ros.lifting.geometry import back_project
from neulens_ros.lifting.lift import (METRES, Box2D, LiftingConfig, LiftingResult,
                                      footprints_for, lift_detections, warm_up)
from neulens_ros.lifting.registration import depth_for_colour
from neulens_ros.models.names import DETECTOR

# Detections for a scene: ground truth by default; a detector plugs in here.
DetectFn = Callable[[Scene], Sequence[Box2D]]
# Lifts a scene's 2D boxes with a lifting config (the scene's `up`, the preset's footprints).
Lifter = Callable[[Sequence[Box2D], LiftingConfig], LiftingResult]
# One way of lifting: prepares a scene's inputs (untimed; the scenes' config and the scene)
# and returns its Lifter (timed).
LiftFn = Callable[[SceneConfig, Scene], Lifter]


def lift_registered(scenes: SceneConfig, scene: Scene) -> Lifter:
    """The scene's own depth, registered to its colour image by construction."""
    return lambda dets, config: lift_detections(dets, scene.depth, '32FC1', scene.camera,
                                                config)


# plumb_bob coefficients (k1, k2, t1, t2, k3) of a RealSense-like 1280 x 720 colour camera:
# the generated scenes are ideal pinhole images, so lifting them with these times a real
# camera's undistortion (their 3D boxes are not scored)
PLUMB_BOB = (-0.055, 0.065, -0.0005, 0.0007, -0.021)


@contextmanager
def rays_per_pixel() -> Iterator[None]:
    """Lifting as it was before the rays were computed once per camera: every pixel's ray
    back-projected (and undistorted, iteratively) anew in every frame."""
    from neulens_ros.lifting import floor, lift
    cached = lift.back_project_pixels
    lift.back_project_pixels = floor.back_project_pixels = back_project
    try:
        yield
    finally:
        lift.back_project_pixels = floor.back_project_pixels = cached


def with_options(distortion: tuple[float, ...] | None = None, per_pixel_rays: bool = False,
                 **options: Any) -> LiftFn:
    """lift_registered with LiftingConfig fields changed (e.g. samples_per_voxel=0), the
    camera given `distortion`, or the rays computed per pixel and frame."""
    def prepare(scenes: SceneConfig, scene: Scene) -> Lifter:
        camera = (scene.camera if distortion is None
                  else dataclasses.replace(scene.camera, distortion=distortion))

        def lift(dets: Sequence[Box2D], config: LiftingConfig) -> LiftingResult:
            with rays_per_pixel() if per_pixel_rays else nullcontext():
                return lift_detections(dets, scene.depth, '32FC1', camera,
                                       dataclasses.replace(config, **options))
        return lift
    return prepare


# A RealSense-like depth camera beside the colour camera, as without align_depth: 848 x 480
# with a wider field of view (fx 424 px), 5 cm to the right, 1 cm higher, pitched 2 degrees
# less (the generator's cameras differ only in position and pitch).
FOREIGN_DEPTH = {'width': 848, 'height': 480, 'focal_px': 320.0,
                 'frame_id': 'camera_depth_optical_frame'}
FOREIGN_OFFSET_M = (0.05, 0.01)  # (right, up) of the depth camera from the colour camera
FOREIGN_PITCH_DEG = -2.0  # the depth camera's pitch minus the colour camera's
FOREIGN_PRESETS = ('easy',)  # presets whose scenes the separate depth camera is rendered for


def foreign_depth(config: SceneConfig, seed: int
                  ) -> tuple[np.ndarray, PinholeCamera, RigidTransform]:
    """(depth [480, 848] metres, its camera, depth-to-colour transform) of scene `seed` seen
    by the FOREIGN_DEPTH camera (easy preset: the same objects as generate_scene's)."""
    if config.preset not in FOREIGN_PRESETS:
        raise DataError(f'unregistered depth is rendered for the {"/".join(FOREIGN_PRESETS)} '
                        f'preset only, not {config.preset!r}')
    shapes = sample_shapes(config, np.random.default_rng([seed, 0]))
    right, up = FOREIGN_OFFSET_M
    depth_config = dataclasses.replace(config, **FOREIGN_DEPTH,
                                       camera_height=config.camera_height + up,
                                       pitch_deg=config.pitch_deg + FOREIGN_PITCH_DEG)
    # the generator's camera stays at x = 0: the objects move left instead
    moved = [dataclasses.replace(s, x=s.x - right) for s in shapes]
    depth = render(depth_config, moved, seed).depth
    r_colour, r_depth = config.camera_to_world(), depth_config.camera_to_world()
    offset = np.array([right, up, 0.0])  # depth camera origin - colour camera origin, world
    to_colour = RigidTransform(r_colour.T @ r_depth, r_colour.T @ offset)
    return depth, depth_config.camera(), to_colour


def lift_foreign(scenes: SceneConfig, scene: Scene) -> Lifter:
    """The scene lifted from the FOREIGN_DEPTH camera's depth registered with the known
    extrinsics; the registration's time is `registration_ms` and counts in `frame_ms`."""
    depth, depth_camera, to_colour = foreign_depth(scenes, scene.seed)

    def lift(dets: Sequence[Box2D], config: LiftingConfig) -> LiftingResult:
        started = time.perf_counter()
        registered, camera = depth_for_colour(depth, depth_camera, scene.camera, to_colour)
        registration_ms = 1e3 * (time.perf_counter() - started)
        result = lift_detections(dets, registered, METRES, camera, config)
        frame_ms = result.timings_ms['frame_ms'] + registration_ms
        return dataclasses.replace(result, timings_ms={
            'frame_ms': frame_ms, 'per_object_ms': frame_ms / max(1, len(dets)),
            'registration_ms': registration_ms})
    return lift


MIN_TRUTH_PIXELS = 200  # objects with fewer visible pixels are not scored


def ground_truth_boxes(scene: Scene, min_visibility: float = 0.5,
                       min_pixels: int = MIN_TRUTH_PIXELS) -> list[Box2D]:
    return [Box2D(*o.box2d, class_id=o.class_id) for o in scene.objects
            if o.visibility >= min_visibility and o.visible_pixels >= min_pixels]


def truth_box(scene: Scene, index: int, g: np.ndarray) -> YawBox:
    """The generator's 3D box of object `index` in the gravity frame g.

    The yaw comes from the direction of the box's own x axis in G's ground plane, (x, z) =
    (cos yaw, -sin yaw) as in YawBox: the generator's world frame (x right, y up, z forward)
    is a mirror image of the optical frame, so its box-to-camera matrix has determinant -1
    and is no rotation about G's y axis whose angle could be read off row 0."""
    obj = scene.objects[index]
    x_axis = g @ np.asarray(obj.rotation)[:, 0]  # [3] the box's x axis in G
    return YawBox(g @ np.asarray(obj.centre), np.asarray(obj.size),
                  float(np.arctan2(-x_axis[2], x_axis[0])))


def detector_boxes(score_threshold: float = 0.3, checkpoint: str = DETECTOR) -> DetectFn:
    """DetectFn running the shipped detector (untiled, full width) on each scene's colour
    image: its boxes in colour pixels, as the lifting node receives them."""
    import torch

    from neulens_ros.models.zoo import load_detector
    from neulens_ros.data.resize import box_resize
    from neulens_ros.supernet.centernet import decode
    from neulens_ros.supernet.executor import normalise
    model, _ = load_detector(checkpoint)
    cfg = model.config

    @torch.inference_mode()
    def detect(scene: Scene) -> list[Box2D]:
        image = box_resize(scene.rgb, (cfg.input_width, cfg.input_height))
        x = normalise(torch.from_numpy(np.array(image)).permute(2, 0, 1)[None])  # own copy
        found = decode(model(x), cfg.output_stride, score_threshold)[0]
        sx, sy = scene.rgb.shape[1] / cfg.input_width, scene.rgb.shape[0] / cfg.input_height
        return [Box2D(b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy, int(c), float(v))
                for b, c, v in zip(found.boxes, found.classes, found.scores, strict=True)]
    return detect


def match_truth(scene: Scene, box: Box2D) -> tuple[int, float]:
    """(index of the scene object whose 2D box overlaps `box` most, that 2D IoU)."""
    from neulens_ros.eval.map import box_iou
    truths = np.array([o.box2d for o in scene.objects], np.float64)
    ious = box_iou(np.array([[box.x0, box.y0, box.x1, box.y1]]), truths)[0]
    return int(np.argmax(ious)), float(np.max(ious))


DEFAULT_SCENES = SceneConfig()
MATCH_IOU_2D = 0.5  # a lifted detection counts for the object it overlaps this much in 2D


def score_frame(scene: Scene, result: LiftingResult, min_visibility: float
                ) -> tuple[list[dict[str, Any]], int, int, int]:
    """(rows of matched objects, unmatched boxes, missed objects, scored objects) of one
    frame: lifted boxes matched one per object, highest score first (see evaluate_lifting)."""
    g = gravity_frame(np.asarray(scene.up))
    rows, unmatched = [], 0
    taken: set[int] = set()
    for obj in sorted(result.objects, key=lambda o: -o.detection.score):
        t, iou_2d = match_truth(scene, obj.detection)
        truth = scene.objects[t]
        if iou_2d < MATCH_IOU_2D or truth.visibility < min_visibility or t in taken:
            unmatched += 1
            continue
        taken.add(t)
        rows.append({'seed': scene.seed, 'class': truth.class_name, 'iou_2d': iou_2d,
                     'distance_m': float(np.linalg.norm(truth.centre)),
                     'visibility': truth.visibility,
                     'centre_error_m': float(np.linalg.norm(obj.centre
                                                            - np.asarray(truth.centre))),
                     'iou_3d': iou_3d(obj.box_g, truth_box(scene, t, g)),
                     'points': obj.num_points})
    visible = {i for i, o in enumerate(scene.objects) if o.visibility >= min_visibility
               and o.visible_pixels >= MIN_TRUTH_PIXELS}
    return rows, unmatched, len(visible - taken), len(visible)


DENSE_FRAME = 8  # detections in a frame counted as dense in the timing


def summarise(rows: list[dict[str, Any]], frames: list[dict[str, Any]], unmatched: int,
              missed: int, objects: int) -> dict[str, Any]:
    errors = np.array([r['centre_error_m'] for r in rows])
    ious = np.array([r['iou_3d'] for r in rows])
    near = np.array([1.0 <= r['distance_m'] <= 4.0 for r in rows])
    per_object = np.array([f['per_object_ms'] for f in frames if f['detections']])
    dense = [f['frame_ms'] for f in frames if f['detections'] >= DENSE_FRAME]
    dense_cpu = [f['cpu_ms'] for f in frames if f['detections'] >= DENSE_FRAME]
    return {
        'objects': len(rows),
        'median_centre_error_m_1_to_4m': float(np.median(errors[near])) if near.any()
        else None,
        'median_centre_error_m': float(np.median(errors)) if len(rows) else None,
        'iou_at_least_0.5_fraction': float(np.mean(ious >= 0.5)) if len(rows) else None,
        'median_iou_3d': float(np.median(ious)) if len(rows) else None,
        'iou_at_least_0.5_by_class': {
            name: float(np.mean([r['iou_3d'] >= 0.5 for r in rows if r['class'] == name]))
            for name in sorted({r['class'] for r in rows})},
        'median_ms_per_object': float(np.median(per_object)) if len(per_object) else None,
        'median_ms_per_frame': float(np.median([f['frame_ms'] for f in frames])),
        'median_cpu_ms_per_frame': float(np.median([f['cpu_ms'] for f in frames])),
        'median_ms_per_dense_frame': float(np.median(dense)) if dense else None,
        'median_cpu_ms_per_dense_frame': float(np.median(dense_cpu)) if dense else None,
        'dense_frames': len(dense),
        'skipped': sum((sum(f['skipped'].values()) for f in frames), 0),
        'unmatched': unmatched,
        'truth_objects': objects,
        'missed': missed,
    }


def evaluate_variants(seeds: Sequence[int], variants: Mapping[str, LiftFn],
                      config: SceneConfig = DEFAULT_SCENES, detect: DetectFn = ground_truth_boxes,
                      progress: bool = True, min_visibility: float = 0.5
                      ) -> dict[str, dict[str, Any]]:
    """evaluate_lifting's result for each way of lifting, all on the same scenes and boxes,
    one after the other on every frame (side by side on the same machine load)."""
    from neulens_ros.progress import progress_bar
    footprints = footprints_for(class_names(config.preset))
    warm_up(LiftingConfig())  # open3d's import and first calls are not any variant's time
    acc = {name: ([], [], [0, 0, 0]) for name in variants}  # rows, frames, counts
    for seed in progress_bar(seeds, desc='lifting', unit='scene', disable=not progress):
        scene = generate_scene(config, seed)
        dets = list(detect(scene))
        lifting = LiftingConfig(up=scene.up, footprints=footprints)
        for name, prepare in variants.items():
            lift = prepare(config, scene)
            cpu = time.process_time()
            result = lift(dets, lifting)
            cpu_ms = 1e3 * (time.process_time() - cpu)  # this process's CPU time, all threads
            rows, frames, counts = acc[name]
            frames.append({'seed': seed, 'detections': len(dets),
                           'lifted': len(result.objects), 'skipped': dict(result.skipped),
                           **result.timings_ms, 'cpu_ms': cpu_ms})
            found, unmatched, missed, objects = score_frame(scene, result, min_visibility)
            rows.extend(found)
            counts[0] += unmatched
            counts[1] += missed
            counts[2] += objects
    return {name: {'objects': rows, 'frames': frames,
                   'summary': summarise(rows, frames, *counts)}
            for name, (rows, frames, counts) in acc.items()}


# The side-by-side comparison of `neulens-eval lifting --compare`: the previous path (every
# pixel of each box, rays per pixel and frame), every pixel with the rays computed once, the
# default path (columns sampled), the default path on depth from the FOREIGN_DEPTH camera
# registered with its extrinsics, and the previous and the default path timed with a real
# camera's distortion (PLUMB_BOB; timing only).
COMPARED = {'previous': with_options(samples_per_voxel=0, per_pixel_rays=True),
            'every_pixel': with_options(samples_per_voxel=0), 'sampled': lift_registered,
            'foreign_depth_registered': lift_foreign,
            'previous_plumb_bob': with_options(PLUMB_BOB, True, samples_per_voxel=0),
            'sampled_plumb_bob': with_options(PLUMB_BOB)}
TIMING = ('median_ms_per_frame', 'median_cpu_ms_per_frame', 'median_ms_per_dense_frame',
          'median_cpu_ms_per_dense_frame')
ACCURACY = ('median_centre_error_m', 'median_centre_error_m_1_to_4m',
            'iou_at_least_0.5_fraction', 'median_iou_3d', 'objects', 'missed')


def comparison(results: Mapping[str, dict[str, Any]]) -> dict[str, Any]:
    """Timing and accuracy of COMPARED side by side (medians over the frames / objects), and
    the speed-ups of the default path over the previous one (wall and CPU time)."""
    out: dict[str, Any] = {
        name: {k: r['summary'][k] for k in TIMING + (() if 'plumb_bob' in name else ACCURACY)}
        for name, r in results.items()}
    for suffix in ('', '_plumb_bob'):
        old, new = out[f'previous{suffix}'], out[f'sampled{suffix}']
        out[f'speed_up{suffix}'] = {k: old[k] / new[k] for k in TIMING if new[k]}
    out['foreign_depth_registered']['median_registration_ms'] = float(np.median(
        [f['registration_ms'] for f in results['foreign_depth_registered']['frames']]))
    return out


def evaluate_lifting(seeds: Sequence[int], config: SceneConfig = DEFAULT_SCENES,
                     detect: DetectFn = ground_truth_boxes, progress: bool = True,
                     min_visibility: float = 0.5) -> dict[str, Any]:
    """Per object: distance, centre error, 3D IoU, class; per frame: time and counts.

    Lifted boxes are matched one per object, highest score first: a box counts when its 2D
    box overlaps an object at least `min_visibility` visible, not yet taken, with 2D IoU >=
    MATCH_IOU_2D (always, for ground-truth boxes); the others are `unmatched` (a detector's
    false or duplicate boxes, or mostly hidden objects). Objects at least `min_visibility`
    visible that no lifted box took are `missed` (not detected, or no 3D box). Each class's
    footprint kind comes from its name in the scenes' preset."""
    return evaluate_variants(seeds, {'lifting': lift_registered}, config, detect, progress,
                             min_visibility)['lifting']


MOTORCYCLE_NEAR_M = 3.0  # the bike's pixels: nearer than the background wall (3.8-4.8 m)


def lift_motorcycle() -> dict[str, Any]:
    """The real Middlebury `stereo_motorcycle` sample lifted: the 2D box is the 1st-99th
    percentile extent of the pixels nearer than MOTORCYCLE_NEAR_M, the camera level (up =
    -y) and no view completion (the sample shows the bike's side). Sizes in metres: across
    the view (x), height and along the view (z) of the box's own axes, plus its distance."""
    from neulens_ros.data.middlebury import load_motorcycle
    _, depth, camera = load_motorcycle()
    vs, us = np.nonzero(np.isfinite(depth) & (depth < MOTORCYCLE_NEAR_M))
    if len(us) == 0:
        raise DataError(f'no pixel of the motorcycle sample is nearer than {MOTORCYCLE_NEAR_M} m')
    x0, x1 = np.percentile(us, [1, 99])
    y0, y1 = np.percentile(vs, [1, 99])
    box = Box2D(float(x0), float(y0), float(x1) + 1, float(y1) + 1, class_id=0)
    # not one of the generator's classes: its own footprint kind, the visible one as it is
    result = lift_detections([box], depth, '32FC1', camera,
                             LiftingConfig(complete_depth=False, footprints=('none',)))
    if not result.objects:
        return {'box_2d': [box.x0, box.y0, box.x1, box.y1], 'skipped': dict(result.skipped)}
    obj = result.objects[0]
    return {'box_2d': [round(v) for v in (box.x0, box.y0, box.x1, box.y1)],
            'size_m': [round(float(v), 3) for v in obj.size],
            'yaw_deg': round(float(np.degrees(obj.box_g.yaw)), 1),
            'distance_m': round(float(np.linalg.norm(obj.centre)), 3),
            'points': obj.num_points}
