"""The spellings of data.source that name the built-in generator, read alike by the configuration, the evaluation
and the server: `demo` or `demo:<family>` (still images), `demo-video` or `demo-video:<family>` (the same scenes
as clips, carrying the same family's trace)."""
from __future__ import annotations

DEMO = "demo"
DEMO_VIDEO = "demo-video"
DEMO_SOURCES = (DEMO, DEMO_VIDEO)


def demo_family(source: str) -> str | None:
    """The family a demo source names, lower-cased ("" when it names none, i.e. data.demo.style); None when source
    is not the generator."""
    kind, _, family = source.strip().lower().partition(":")
    return family.strip() if kind in DEMO_SOURCES else None
