"""ImageNet class names, from the list this package ships (``imagenet_classes.txt``, index order).

Each line of the list is one class: its name, then its synonyms, comma-separated
("monarch, monarch butterfly, milkweed butterfly, Danaus plexippus"). A class is chosen by index
(0..999) or by any of its names, case-insensitively; a name matches a class's first name before any
synonym (two classes are both called "crane": the bird, 134, comes first). No TensorFlow here.
"""

from __future__ import annotations

import difflib
from functools import lru_cache

from .errors import ConfigError

N_CLASSES = 1000  # ImageNet-1k, the classifier every registered model was trained on


@lru_cache(maxsize=1)
def class_names() -> tuple[tuple[str, ...], ...]:
    """Every class's names, first name first, in index order (1000 tuples)."""
    from importlib import resources

    text = resources.files("dreamvideo").joinpath("imagenet_classes.txt").read_text(encoding="utf-8")
    names = tuple(tuple(s.strip() for s in line.split(",") if s.strip()) for line in text.splitlines() if line.strip())
    if len(names) != N_CLASSES:  # pragma: no cover - a broken install
        raise ConfigError(f"the shipped ImageNet class list has {len(names)} lines, not {N_CLASSES}: "
                          "reinstall dreamvideo")
    return names


def class_label(index: int) -> str:
    """The first name of class ``index`` ('monarch' for 323)."""
    return class_names()[index][0]


def resolve_class(value: int | str) -> int:
    """An ImageNet class index from an index or a name; ConfigError with close names otherwise."""
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ConfigError(f"dream_class = {value!r} is not a class: give an ImageNet name (e.g. monarch) or 0..999")
    text = value.strip() if isinstance(value, str) else str(value)
    if text.lstrip("+-").isdigit():
        index = int(text)
        if not 0 <= index < N_CLASSES:
            raise ConfigError(f"dream_class {index} is not an ImageNet index: use 0..{N_CLASSES - 1} or a name")
        return index
    key = text.lower()
    names = class_names()
    for position in (0, None):  # first names, then any synonym
        for index, line in enumerate(names):
            candidates = line[:1] if position == 0 else line
            if key in (c.lower() for c in candidates):
                return index
    every = sorted({c.lower() for line in names for c in line})
    close = difflib.get_close_matches(key, every, n=3, cutoff=0.6)
    hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
    raise ConfigError(f"dream_class {text[:60]!r} is not an ImageNet class name{hint}: "
                      f"give a name from `dreamvideo models MODEL --classes` or an index 0..{N_CLASSES - 1}")


__all__ = ["N_CLASSES", "class_names", "class_label", "resolve_class"]
