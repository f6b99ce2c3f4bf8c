"""Class statistics of the toy world: how much of some classes the scenes of a domain show.

Real sim -> real pairs rarely show the same content as often: GTA5 frames have far more vegetation, terrain and sky
than Cityscapes photos. A translator trained adversarially on such pairs can match the target's statistics by
*flipping semantics* (painting trees as buildings). The toy world can reproduce that gap: a
:class:`SceneStatistics` scales how much vegetation the layout of a scene draws, and a *preset* names one
statistics per domain (``matched``: both domains as drawn by default; ``unmatched``: a lush source domain A and a
sparse target domain B).

Example:
    >>> lush, sparse = domain_statistics("unmatched")
    >>> lush.vegetation > 1.0 > sparse.vegetation
    True
    >>> domain_statistics("matched") == (SceneStatistics(), SceneStatistics())
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, TypeAlias

__all__ = ["STATISTICS_PRESETS", "SceneStatistics", "StatisticsPreset", "StatisticsSetting", "domain_statistics"]

_MAX_VEGETATION = 10.0  # denser rows of trees than this become a wall of foliage and slow to draw


@dataclass(frozen=True)
class SceneStatistics:
    """Multipliers on how often the layout of a scene draws some classes, relative to the default toy world.

    ``SceneStatistics()`` (all 1.0) draws exactly the default scenes: for a given seed the layout, the labels and
    both renderings are bit-identical to those drawn without statistics.

    Attributes:
        vegetation: Amount of greenery, in (0, 10]. Multiplies the probability of a tree row along each side of
            the street, of a tree in each gap between buildings, of a park replacing one row of buildings, of a
            grass strip (``terrain``, with bushes) beside each sidewalk and of a tree-covered stretch of the far
            skyline; the number of trees in a park and of bushes on a grass strip; and the density of tree rows (the
            spacing is divided by it). Probabilities are capped at 1. Above 1, trees, bushes and the wooded skyline
            also grow by ``sqrt(vegetation)`` (at most twice the default size). Values above 1 give more
            ``vegetation`` (and ``terrain``) pixels and fewer ``building`` ones, values below 1 the opposite.
    """

    vegetation: float = 1.0

    def __post_init__(self) -> None:
        value = self.vegetation
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or not 0.0 < value <= _MAX_VEGETATION:
            raise ValueError(f"SceneStatistics: vegetation must be a number in (0, {_MAX_VEGETATION:g}]; "
                             f"got {value!r}.")
        object.__setattr__(self, "vegetation", float(value))

    @property
    def is_default(self) -> bool:
        """Whether these are the default statistics (every multiplier 1)."""
        return self.vegetation == 1.0


StatisticsPreset: TypeAlias = Literal["matched", "unmatched"]

#: Statistics of (domain A, domain B) per preset name. ``unmatched`` mimics GTA5 -> Cityscapes: the source domain A
#: (the simulator by default) is drawn with three times the default greenery, the target domain B (the photos) with
#: half of it. Over many scenes (at 32 px) about 23 % of A's pixels are vegetation and 5 % building, against 3 % and
#: 28 % in B (the default toy world: 9 % and 20 %); road, sidewalk, cars and people keep their frequencies.
STATISTICS_PRESETS: dict[str, tuple[SceneStatistics, SceneStatistics]] = {
    "matched": (SceneStatistics(), SceneStatistics()),
    "unmatched": (SceneStatistics(vegetation=3.0), SceneStatistics(vegetation=0.5)),
}

#: What the two-domain toy datasets accept: a preset name, or explicit statistics of (domain A, domain B).
StatisticsSetting: TypeAlias = StatisticsPreset | tuple[SceneStatistics, SceneStatistics]


def domain_statistics(setting: StatisticsSetting, owner: str = "toy_world") -> tuple[SceneStatistics, SceneStatistics]:
    """Resolves a preset name (or an explicit pair) to the statistics of (domain A, domain B).

    Args:
        setting: A key of :data:`STATISTICS_PRESETS` (``"matched"``, ``"unmatched"``), or a pair of
            :class:`SceneStatistics` for domains A and B.
        owner: Name used in error messages.

    Returns:
        ``(statistics_a, statistics_b)``.
    """
    if isinstance(setting, str):
        if setting not in STATISTICS_PRESETS:
            raise ValueError(f"{owner}: statistics must be one of {sorted(STATISTICS_PRESETS)} or a pair of "
                             f"SceneStatistics; got {setting!r}.")
        return STATISTICS_PRESETS[setting]
    pair = tuple(setting) if isinstance(setting, (tuple, list)) else ()
    if len(pair) != 2 or not all(isinstance(s, SceneStatistics) for s in pair):
        raise ValueError(f"{owner}: statistics must be one of {sorted(STATISTICS_PRESETS)} or a pair of "
                         f"SceneStatistics (domain A, domain B); got {setting!r}.")
    return pair[0], pair[1]
