"""The one way a saved Keras model is loaded, for every stage, the Keras serving backend and the benchmark.

TensorFlow and Keras are imported only when a model is loaded, so importing this module is free.
"""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from deepfake_detector.contracts.errors import ModelError

if TYPE_CHECKING:
    import keras


def load_keras_model(path: str | Path, image_size: int | None = None, *, what: str = "model",
                     made_by: str = "train") -> keras.Model:
    """The model in path (.h5 or .keras), uncompiled.

    With image_size it must also take (S, S, 3) images of that size and give one P(fake) per image.
    Every failure is a ModelError naming the file and the stage (`made_by`) that writes it.
    """
    import keras

    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: {what} not found; run the {made_by} stage first")
    try:
        model = keras.models.load_model(path, compile=False)
    except (OSError, ValueError, TypeError, KeyError) as error:
        raise ModelError(f"{path}: cannot load the {what}: {error}") from None
    if image_size is not None:
        check_model_shape(model, path, image_size)
    return model


def check_model_shape(model: keras.Model, path: Path, image_size: int) -> None:
    """ModelError unless model maps (N, image_size, image_size, 3) images to one P(fake) each."""
    if isinstance(model.output_shape, list) or tuple(model.output_shape[1:]) != (1,):
        raise ModelError(f"{path}: expected one P(fake) output per image, got output shape {model.output_shape}")
    shape = model.input_shape
    if isinstance(shape, list) or len(shape) != 4 or shape[3] != 3:
        raise ModelError(f"{path}: expected an (N, S, S, 3) image input, got {shape}")
    if {shape[1], shape[2]} - {None, image_size}:
        raise ModelError(f"{path}: the model takes {shape[1]}x{shape[2]} images but params.yaml: model.image_size "
                         f"is {image_size}")
