"""The model: factory, augmentation, distribution strategies, training and its resume logic."""
