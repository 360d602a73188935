"""Errors the user can act on; each message names the file, key or input that is wrong."""


class DeepfakeDetectorError(Exception):
    """Base class for every error this project raises on purpose."""


class ConfigError(DeepfakeDetectorError):
    """config/config.yaml or params.yaml is missing a key, has an unknown one, or a bad value."""


class IngestionError(DeepfakeDetectorError):
    """The data source could not be fetched, extracted or understood."""


class UnsafeArchiveError(IngestionError):
    """An archive member would escape the target folder, is a link or device, or exceeds a cap."""


class DataValidationError(DeepfakeDetectorError):
    """The dataset is unusable: too many bad files, an empty class, an unknown label."""


class ModelError(DeepfakeDetectorError):
    """The model cannot be built or loaded as asked (e.g. ImageNet weights offline)."""


class ImageError(DeepfakeDetectorError):
    """An input image is empty, corrupt, not an image, or too large to decode safely."""


class ImageTooLargeError(ImageError):
    """An image is bigger, in bytes or declared pixels, than the caps allow (a server answers 413)."""


class VideoError(ImageError):
    """A video upload is corrupt, truncated, has no video stream or no frames (a server answers 400).

    An ImageError, so that every handler of bad uploads also covers videos."""


class VideoTooLargeError(ImageTooLargeError, VideoError):
    """A video is bigger than the caps in bytes, duration, frame size or frames decoded (a server answers 413)."""


class ExportError(DeepfakeDetectorError):
    """An exported model could not be written, or is not faithful enough to the trained one."""
