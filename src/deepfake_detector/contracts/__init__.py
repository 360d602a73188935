"""The bottom floor: what stages hand each other. Label semantics, the export folder layout, layer
names, the temperature formula, the decision rule, and the one reader each of scores.json and of the
model card. No TensorFlow; no I/O beyond reading; imports nothing above utils."""
