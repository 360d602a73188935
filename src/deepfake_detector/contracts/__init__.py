"""The bottom floor: what stages hand each other (labels, export layout, decision rule, readers of
scores.json and the model card). No TensorFlow; reading only."""
