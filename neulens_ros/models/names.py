"""The file names of each scene preset's checkpoints and the package's default preset.

Kept apart from `zoo.py` (which imports torch) so that nodes running no network (the source,
the lifting) can follow the default preset without loading torch. Switching the package to
another preset is DEFAULT_PRESET here plus the checkpoint names in config/gate.yaml,
config/supernet.yaml and the preset in config/source.yaml (test/test_presets.py
checks that they agree).
"""

from __future__ import annotations

# Per scene preset: the file names of its detector, gate and DEMUX accuracy table.
CHECKPOINTS = {'easy': ('neulens_detector', 'neulens_cgg', 'accuracy.json'),
               'hard': ('neulens_detector_hard', 'neulens_cgg_hard', 'accuracy_hard.json')}
# Per scene preset: the DEMUX latency profile of its detector's architecture on a CPU, one
# thread (neulens-profile --detector NAME --install writes it).
PREDICTORS = {'easy': 'predictor_cpu.json', 'hard': 'predictor_cpu_hard.json'}
DEFAULT_PRESET = 'hard'
DETECTOR, GATE, ACCURACY_TABLE = CHECKPOINTS[DEFAULT_PRESET]
DATASET_PRESET = 'dataset'  # the preset a detector trained on a data set on disk records


def naming_preset(preset: str) -> str:
    """The preset whose checkpoint names and DEMUX profile a detector trained on `preset`
    uses: its own, but for a data set on disk, whose run trains the easy plan (train/plan.py
    FULL: the easy architecture and the paper's gate)."""
    return 'easy' if preset == DATASET_PRESET else preset
