"""Binary attributes of toy world scenes (weather, street layout, visible classes) for attribute-conditioned methods."""

from __future__ import annotations

import random
from collections.abc import Sequence

import numpy as np

from .labels import _ID_BY_NAME
from .layout import Scene, _check_scene

__all__ = ["scene_attributes"]

_ATTRIBUTE_ALIASES = {"people": "person", "pedestrian": "person", "pedestrians": "person", "persons": "person",
                      "trees": "vegetation", "tree": "vegetation", "buses": "bus"}


def _overcast(seed: int) -> bool:
    """The weather :func:`render_photo` draws first for appearance seed ``seed``."""
    return bool(np.random.default_rng([seed, 0x9F]).random() < 0.25)


def _class_of_attribute(name: str) -> int | None:
    words = name.replace("_", " ")
    for candidate in (words, _ATTRIBUTE_ALIASES.get(name), words[:-1] if words.endswith("s") else None):
        if candidate is not None and candidate in _ID_BY_NAME:
            return _ID_BY_NAME[candidate]
    return None


def scene_attributes(scene: Scene, names: Sequence[str]) -> np.ndarray:
    """Binary attributes of a scene for any attribute names, a pure function of the scene (and the name).

    Names are matched case-insensitively, with spaces and hyphens read as underscores:

    - weather of the scene's photo (:func:`render_photo` with the scene's own seed): ``overcast`` / ``cloudy`` and
      ``sunny`` / ``clear``;
    - street layout: ``crosswalk``, ``two_way`` (oncoming lanes), ``one_way``, ``wide_road`` (three lanes or more);
    - a Cityscapes class name, singular or plural (``car``, ``cars``, ``traffic_sign``, ``people``, ``trees``): 1 when
      the class is visible in the scene;
    - any other name (e.g. CelebA's ``Black_Hair``): a fair coin drawn from a hash of the name and the scene seed,
      stable across processes, so such labels vary across scenes but not across calls.

    Args:
        scene: A scene from :func:`make_scene`.
        names: Attribute names.

    Returns:
        float32 (len(names),) in {0, 1}.
    """
    _check_scene(scene, "scene_attributes")
    layout = scene.layout
    overcast = _overcast(scene.seed)
    named = {
        "overcast": overcast, "cloudy": overcast, "sunny": not overcast, "clear": not overcast,
        "crosswalk": layout.crosswalk is not None, "two_way": layout.oncoming > 0, "one_way": layout.oncoming == 0,
        "wide_road": layout.n_lanes >= 3,
    }
    values = []
    for raw in names:
        if not isinstance(raw, str) or not raw.strip():
            raise ValueError(f"scene_attributes: attribute names must be non-empty strings; got {raw!r}.")
        name = raw.strip().lower().replace(" ", "_").replace("-", "_")
        label = _class_of_attribute(name)
        if name in named:
            value = named[name]
        elif label is not None:
            value = bool((scene.labels == label).any())
        else:
            value = random.Random(f"zoo-toy-attribute:{name}:{scene.seed}").random() < 0.5
        values.append(float(value))
    return np.asarray(values, np.float32)
