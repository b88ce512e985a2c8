"""The classes of a detector checkpoint: training index -> the data set's class id and name.

The network's heatmap channel i is class i in training order; a checkpoint's metadata lists
`class_names` (by training index) and `class_ids` (the data set's own ids, e.g. COCO's
category ids, in the same order; range(num_classes) when absent). On the wire (vision_msgs
ObjectHypothesis.class_id, a decimal string) and in vision_msgs/LabelInfo the data set's ids
are used. Kept free of torch so that nodes running no network can use it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from neulens_ros.errors import CheckpointError

MAX_CLASS_ID = 65535  # vision_msgs/VisionClass.class_id is a uint16


@dataclass(frozen=True)
class ClassLabels:
    """ids[i] and names[i] are the data set's id and the name of training class i."""

    ids: tuple[int, ...]
    names: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.names or len(self.ids) != len(self.names):
            raise CheckpointError(f'{len(self.ids)} class ids for {len(self.names)} class '
                                  'names: the metadata must list one id per name (or none)')
        if len(set(self.ids)) != len(self.ids):
            raise CheckpointError(f'class ids {list(self.ids)} repeat an id')
        if not all(isinstance(i, int) and 0 <= i <= MAX_CLASS_ID for i in self.ids):
            raise CheckpointError(f'class ids {list(self.ids)} must be integers in '
                                  f'0..{MAX_CLASS_ID} (vision_msgs VisionClass.class_id)')

    @classmethod
    def from_lists(cls, names: Sequence[str], ids: Sequence[int] | None = None
                   ) -> 'ClassLabels':
        """Labels of `names`, with the ids range(len(names)) when `ids` is None."""
        ids = range(len(names)) if ids is None else ids
        return cls(tuple(int(i) if isinstance(i, (int, np.integer)) else i for i in ids),
                   tuple(str(n) for n in names))

    def dataset_ids(self, indices: np.ndarray) -> np.ndarray:
        """[N] training indices -> [N] int64 data-set class ids."""
        indices = np.asarray(indices, np.int64)
        if indices.size and (indices.min() < 0 or indices.max() >= len(self.ids)):
            raise CheckpointError(f'class index {int(indices.max())} is beyond the '
                                  f'{len(self.ids)} classes of the checkpoint')
        return np.asarray(self.ids, np.int64)[indices]

    def names_by_id(self) -> list[str]:
        """A list whose entry at each class id is that class's name ('' between ids): the
        lifting node's `class_names`, which it indexes by the class id on the wire."""
        out = [''] * (max(self.ids) + 1)
        for class_id, name in zip(self.ids, self.names, strict=True):
            out[class_id] = name
        return out


def metadata_labels(meta: dict[str, Any], default_names: Sequence[str]) -> ClassLabels:
    """The ClassLabels of checkpoint metadata: `class_names` and `class_ids`, at its top level
    or in its architecture (then the older architecture `classes`, then `default_names`)."""
    arch = meta.get('architecture', {})
    names = (meta.get('class_names') or arch.get('class_names') or arch.get('classes')
             or default_names)
    ids = meta.get('class_ids', arch.get('class_ids'))
    labels = ClassLabels.from_lists(names, ids)
    num_classes = arch.get('num_classes')
    if num_classes is not None and num_classes != len(labels.names):
        raise CheckpointError(f'the metadata names {len(labels.names)} classes but the '
                              f'network has {num_classes}')
    return labels
