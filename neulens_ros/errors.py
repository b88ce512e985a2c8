"""The package's exception hierarchy: every error neulens_ros raises derives from NeulensError.

Each subclass also derives from the built-in exception a caller would naturally catch
(ValueError for bad input, RuntimeError for a failed operation), so generic handlers work too.
"""


class NeulensError(Exception):
    """Base class of every error raised by neulens_ros."""


class ConfigError(NeulensError, ValueError):
    """A configuration value (dataclass field, ROS parameter, CLI flag) is invalid."""


class EncodingError(NeulensError, ValueError):
    """An image message cannot be converted: unknown encoding, bad size/step, truncated data."""


class GeometryError(NeulensError, ValueError):
    """Tile geometry or camera geometry is inconsistent (e.g. tiles larger than the frame)."""


class UnsupportedLayerError(NeulensError, TypeError):
    """A network contains a layer the tiling or slimming machinery cannot handle."""


class CheckpointError(NeulensError, RuntimeError):
    """A checkpoint is missing, corrupt or does not match the model it is loaded into."""


class BackendError(NeulensError, RuntimeError):
    """An inference backend is unavailable or failed to build/run a subnet."""


class LiftingError(NeulensError, ValueError):
    """2D -> 3D lifting got inputs it cannot use (bad depth encoding, size mismatch, no K)."""


class DataError(NeulensError, ValueError):
    """A data set, scene description or recorded bag is malformed."""


class LaunchError(NeulensError, RuntimeError):
    """A node process did not come up, or did not stop, as expected."""
