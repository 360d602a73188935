"""The one place that pins label semantics: fake is the positive class, and the model outputs P(fake)."""

FAKE = 1
REAL = 0
CLASS_NAMES = {FAKE: "fake", REAL: "real"}
LABELS_BY_NAME = {name: label for label, name in CLASS_NAMES.items()}
POSITIVE_CLASS = "fake"
