"""The file names of each scene preset's checkpoints and the package's default preset.

Kept apart from `zoo.py` (which imports torch) so that nodes running no network (the source,
the lifting) can follow the default preset without loading torch. Switching the package to
another preset is DEFAULT_PRESET here plus the checkpoint names in config/gate.yaml,
config/supernet.yaml and the preset in config/source.yaml (test/test_config_defaults.py
checks that they agree).
"""

from __future__ import annotations

# Per scene preset: the file names of its detector, gate and DEMUX accuracy table.
CHECKPOINTS = {'easy': ('neulens_detector', 'neulens_cgg', 'accuracy.json'),
               'hard': ('neulens_detector_hard', 'neulens_cgg_hard', 'accuracy_hard.json')}
DEFAULT_PRESET = 'easy'
DETECTOR, GATE, ACCURACY_TABLE = CHECKPOINTS[DEFAULT_PRESET]
