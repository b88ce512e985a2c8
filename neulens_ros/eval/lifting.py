"""Lifting evaluation on generated scenes with ground-truth 2D boxes (or a detector's)."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from neulens_ros.data.scenes import Scene, SceneConfig, class_names, generate_scene
from neulens_ros.errors import DataError
from neulens_ros.lifting.boxes import YawBox, gravity_frame, iou_3d
from neulens_ros.lifting.lift import Box2D, LiftingConfig, footprints_for, lift_detections
from neulens_ros.models.names import DETECTOR

# Detections for a scene: ground truth by default; a detector plugs in here.
DetectFn = Callable[[Scene], Sequence[Box2D]]


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
    from tqdm import tqdm
    footprints = footprints_for(class_names(config.preset))
    rows, frames, unmatched, missed, objects = [], [], 0, 0, 0
    for seed in tqdm(seeds, desc='lifting', unit='scene', disable=not progress):
        scene = generate_scene(config, seed)
        dets = list(detect(scene))
        g = gravity_frame(np.asarray(scene.up))
        result = lift_detections(dets, scene.depth, '32FC1', scene.camera,
                                 LiftingConfig(up=scene.up, footprints=footprints))
        frames.append({'seed': seed, 'detections': len(dets), 'lifted': len(result.objects),
                       'skipped': dict(result.skipped), **result.timings_ms})
        taken: set[int] = set()
        for obj in sorted(result.objects, key=lambda o: -o.detection.score):
            t, iou_2d = match_truth(scene, obj.detection)
            truth = scene.objects[t]
            if iou_2d < MATCH_IOU_2D or truth.visibility < min_visibility or t in taken:
                unmatched += 1
                continue
            taken.add(t)
            rows.append({'seed': seed, 'class': truth.class_name, 'iou_2d': iou_2d,
                         'distance_m': float(np.linalg.norm(truth.centre)),
                         'visibility': truth.visibility,
                         'centre_error_m': float(np.linalg.norm(obj.centre
                                                                - np.asarray(truth.centre))),
                         'iou_3d': iou_3d(obj.box_g, truth_box(scene, t, g)),
                         'points': obj.num_points})
        visible = {i for i, o in enumerate(scene.objects) if o.visibility >= min_visibility
                   and o.visible_pixels >= MIN_TRUTH_PIXELS}
        objects += len(visible)
        missed += len(visible - taken)
    errors = np.array([r['centre_error_m'] for r in rows])
    ious = np.array([r['iou_3d'] for r in rows])
    near = np.array([1.0 <= r['distance_m'] <= 4.0 for r in rows])
    per_object = np.array([f['per_object_ms'] for f in frames if f['detections']])
    return {
        'objects': rows, 'frames': frames,
        'summary': {
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
            'skipped': sum((sum(f['skipped'].values()) for f in frames), 0),
            'unmatched': unmatched,
            'truth_objects': objects,
            'missed': missed,
        }}


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
