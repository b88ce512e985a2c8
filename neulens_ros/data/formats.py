"""Detection data sets on disk in either format: read one (the format told or recognised) and
write generated scenes as one, with a chosen subset of the classes under new names and ids."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from neulens_ros.data.annotated import FORMATS, DetectionDataset
from neulens_ros.data.coco import CocoWriter, read_coco
from neulens_ros.data.scenes import SceneConfig, class_names, generate_scene, is_labelled
from neulens_ros.data.yolo import YoloWriter, read_yolo
from neulens_ros.errors import ConfigError, DataError

READERS = {'coco': read_coco, 'yolo': read_yolo}
WRITERS = {'coco': CocoWriter, 'yolo': YoloWriter}


def dataset_format(path: Path) -> str:
    """'coco' for a JSON file or a folder with annotations/, 'yolo' for a folder with
    labels/ or a class list."""
    path = Path(path)
    if path.is_file() and path.suffix == '.json' or (path / 'annotations').is_dir():
        return 'coco'
    if path.is_dir() and any((path / name).exists()
                             for name in ('labels', 'data.yaml', 'classes.txt')):
        return 'yolo'
    raise DataError(f'{path} is neither a COCO data set (an instances JSON file, or a folder '
                    'with annotations/) nor a YOLO one (a folder with images/, labels/ and '
                    'data.yaml or classes.txt)')


def read_dataset(path: Path, fmt: str | None = None, skip_bad: bool = False
                 ) -> DetectionDataset:
    """The data set at `path` in format `fmt` (recognised when None)."""
    fmt = fmt or dataset_format(path)
    if fmt not in READERS:
        raise ConfigError(f'data set format must be one of {FORMATS}, got {fmt!r}')
    return READERS[fmt](Path(path), skip_bad)


@dataclass(frozen=True)
class ClassSelection:
    """Generated classes kept in a written data set: generator class `source[i]` becomes
    class `names[i]` with id `ids[i]` (training index i)."""

    source: tuple[int, ...]
    names: tuple[str, ...]
    ids: tuple[int, ...]

    def __post_init__(self) -> None:
        if not self.source or not len(self.source) == len(self.names) == len(self.ids):
            raise ConfigError('a class selection needs one name and one id per kept class')
        for what, values in (('generator class', self.source), ('name', self.names),
                             ('id', self.ids)):
            if len(set(values)) != len(values):
                raise ConfigError(f'a class selection repeats a {what}: {list(values)}')
        if not all(n.strip() for n in self.names):
            raise ConfigError(f'class names must not be empty, got {list(self.names)}')


def default_ids(source: Iterable[int], fmt: str) -> tuple[int, ...]:
    """COCO: the generator's class ids (those of the shipped checkpoints); YOLO: 0..n-1 in
    order."""
    source = tuple(source)
    return source if fmt == 'coco' else tuple(range(len(source)))


def parse_classes(text: str | None, preset: str, fmt: str) -> ClassSelection:
    """The selection `SRC:NAME[:ID],...` (generator class index or name, new name, COCO id);
    None keeps every class of `preset` under its own name."""
    generated = class_names(preset)
    if text is None:
        return ClassSelection(tuple(range(len(generated))), generated,
                              default_ids(range(len(generated)), fmt))
    source, names, ids = [], [], []
    for item in (s.strip() for s in text.split(',') if s.strip()):
        parts = item.split(':')
        if len(parts) not in (2, 3):
            raise ConfigError(f'class {item!r}: expected SRC:NAME or SRC:NAME:ID')
        src = int(parts[0]) if parts[0].isdigit() else \
            generated.index(parts[0]) if parts[0] in generated else -1
        if not 0 <= src < len(generated):
            raise ConfigError(f'class {item!r}: {parts[0]!r} is not a class of the '
                              f'{preset!r} preset (0..{len(generated) - 1}: '
                              f'{", ".join(generated)})')
        if len(parts) == 3 and (fmt != 'coco' or not parts[2].lstrip('-').isdigit()):
            raise ConfigError(f'class {item!r}: an explicit id must be an integer, and only '
                              'COCO has free ids (YOLO ids are 0..n-1 in the given order)')
        source.append(src)
        names.append(parts[1])
        ids.append(int(parts[2]) if len(parts) == 3 else None)
    defaults = default_ids(source, fmt)
    return ClassSelection(tuple(source), tuple(names),
                          tuple(d if i is None else i for i, d in zip(ids, defaults,
                                                                      strict=True)))


def write_generated(folder: Path, fmt: str, config: SceneConfig, seeds: Iterable[int],
                    selection: ClassSelection, progress: bool = False) -> int:
    """Render the scenes of `seeds` into a `fmt` data set keeping the objects of the
    selected classes that count as ground truth (scenes.is_labelled); returns the image
    count."""
    from neulens_ros.progress import progress_bar
    if fmt not in WRITERS:
        raise ConfigError(f'data set format must be one of {FORMATS}, got {fmt!r}')
    writer = WRITERS[fmt](folder, selection.names, selection.ids)
    seeds = list(seeds)
    for seed in progress_bar(seeds, desc='rendering', unit='scene', disable=not progress):
        scene = generate_scene(config, seed)
        keep = [o for o in scene.objects if o.class_id in selection.source
                and is_labelled(o, config.width, config.height)]
        writer.add(scene.rgb, np.array([o.box2d for o in keep], np.float64).reshape(-1, 4),
                   np.array([selection.source.index(o.class_id) for o in keep], np.int64),
                   depth_m=scene.depth, camera=scene.camera)
    writer.close()
    return len(seeds)
