"""A tiny dataset of flat-color images and a hand-weighted model that calls red images fake.

Each image is one flat color; the model outputs P(fake) = sigmoid(STEEPNESS * (red - green) / 255),
so an image's score is set by its red-minus-green difference, listed below per split.
"""
import math

import keras
import numpy as np
import pandas as pd
from PIL import Image

IMAGE_SIZE = 32
STEEPNESS = 8.0

# Validation, ranked by red - green: 200F 150F 100F 50R 25F 10F 0R -50R -150R -200R.
#   at 25: TPR 4/5, FPR 1/5 -> FPR = FNR: the EER threshold is p(25)
#   at 10: TPR 1,   FPR 1/5 -> J = 0.8, the largest: the Youden threshold is p(10)
VAL = {"fake": [200, 150, 100, 25, 10], "real": [50, 0, -50, -150, -200]}
# Test, ranked: 180F 120F 75R 60F 5F -25R -90R -100F -120R -180R. Its own EER threshold would
# be p(5). At the val threshold p(25): TP 3 (180, 120, 60), FN 2, FP 1 (75), TN 4.
TEST = {"fake": [180, 120, 60, 5, -100], "real": [75, -25, -90, -120, -180]}
TRAIN = {"fake": [90], "real": [-90]}
JPEG_DIFFERENCES = {("test", 180), ("test", -180), ("train", 90)}  # far from any threshold


def p_fake(difference):
    return 1.0 / (1.0 + math.exp(-STEEPNESS * difference / 255.0))


def write_flat_image(path, difference, image_format):
    red = 128 + difference // 2
    Image.new("RGB", (IMAGE_SIZE, IMAGE_SIZE), (red, red - difference, 64)).save(path, format=image_format)


def write_dataset(root, splits):
    """Images under root/dataset/<class>/ and root/manifest.csv listing them."""
    rows = []
    for split, classes in splits.items():
        for class_name, differences in classes.items():
            (root / "dataset" / class_name).mkdir(parents=True, exist_ok=True)
            for difference in differences:
                is_jpeg = (split, difference) in JPEG_DIFFERENCES
                relative = f"{class_name}/{split}_{difference}.{'jpg' if is_jpeg else 'png'}"
                write_flat_image(root / "dataset" / relative, difference, "JPEG" if is_jpeg else "PNG")
                rows.append({"path": relative, "label": int(class_name == "fake"), "split": split,
                             "sha256": f"{split}{difference}", "group": f"{split}{difference}"})
    pd.DataFrame(rows).to_csv(root / "manifest.csv", index=False)


def write_red_is_fake_model(path):
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3))
    x = keras.layers.Rescaling(1.0 / 255)(inputs)
    x = keras.layers.GlobalAveragePooling2D()(x)
    dense = keras.layers.Dense(1, activation="sigmoid")
    model = keras.Model(inputs, dense(x))
    dense.set_weights([np.array([[STEEPNESS], [-STEEPNESS], [0.0]]), np.zeros(1)])
    model.save(path)
