"""The export folder's contract, pinned once: the model card's name and each variant's file name.

The export stage writes this layout; the predictor, the server, the benchmark and model delivery
read it. Importing this module loads nothing heavy.
"""

MODEL_CARD_NAME = "model_card.json"

# Variant name -> file name inside the export folder, in the order tables list them.
VARIANT_FILES: dict[str, str] = {
    "keras": "model.keras",
    "float32": "model.tflite",
    "float16": "model_fp16.tflite",
    "int8_dynamic": "model_int8.tflite",
    "int8_full": "model_int8_full.tflite",
}
TFLITE_VARIANTS = tuple(name for name in VARIANT_FILES if name != "keras")

# How a model can be served: the TFLite runtime (no TensorFlow), Keras, or auto (TFLite when its
# export is intact and made from the trained model, else Keras).
BACKENDS = ("auto", "tflite", "keras")
