"""The model's layer names, pinned once: the factory names its layers so, and training (freezing the
backbone) and explanations (Grad-CAM on the backbone's last feature map) find them by these names."""

BACKBONE_NAME = "backbone"  # the nested MobileNetV2
OUTPUT_NAME = "p_fake"      # Dense(1, sigmoid): P(fake)
