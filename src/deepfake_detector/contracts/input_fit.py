"""How a decoded image becomes the model's input (model.input_fit), a fact every consumer of a model must share:
the training pipeline, the exports' model card and the TensorFlow-free runtime.

- crop: the center square at the image's own resolution (images smaller than the model's side are resized),
  which keeps the pixel-level traces of up-sampling that a resize would blur;
- resize: the whole image, antialiased bilinear.
"""
INPUT_FITS = ("crop", "resize")
# Model cards written before the choice existed describe models trained on resized images.
LEGACY_INPUT_FIT = "resize"
