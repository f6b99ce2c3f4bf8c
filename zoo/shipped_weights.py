"""Trained weights that ship inside the package: one small model per method, trained on the embedded toy world.

Every file in ``zoo/pretrained/`` was written by ``python bench/train_zoo_weights.py --name <name>`` from the config
``configs/zoo_weights/<method>.yaml``: the real ``zoo fit`` command, then the last checkpoint saved as an fp16
safetensors bundle (the model's configuration is in the file's metadata) and measured on the toy world's test split.
Beside each ``<name>.safetensors`` lie:

- ``<name>.json``, the model card as data: method, task, direction, training command and config, iterations, training
  time and machine, file size and sha256, parameter count, measured metrics and how they were measured, licence;
- ``<name>.md``, the same card for people (:func:`model_card_markdown`);
- ``<name>.losses.csv``, the training losses as ``zoo fit``'s CSV logger wrote them (the notebooks plot them).

:func:`register_shipped_weights` registers each card as a :class:`~zoo.registry.PretrainedEntry` with ``shipped=True``
(its file is found in :data:`zoo.weights.SHIPPED_WEIGHTS_DIR`, checked against the card's sha256 on every load), so
``zoo.load("vsait.toy_sim2photo")`` works offline on a fresh install and ``zoo.load("vsait")`` falls back to it when
no real-data weights of the method are on disk.

    >>> import zoo
    >>> "cyclegan.toy_sim2photo" in zoo.list_models(pretrained=True)
    True
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from zoo.registry import PRETRAINED, PretrainedEntry, register_pretrained
from zoo.weights import SHIPPED_LICENSE, SHIPPED_WEIGHTS_DIR

__all__ = ["SHIPPED_LICENSE", "model_card_markdown", "register_shipped_weights", "shipped_card", "shipped_cards"]



@cache
def shipped_cards() -> dict[str, dict[str, Any]]:
    """The model cards of the shipped weights, by registered name (read once from ``zoo/pretrained/*.json``)."""
    cards = {}
    for path in sorted(SHIPPED_WEIGHTS_DIR.glob("*.json")):
        card = json.loads(path.read_text())
        cards[card["name"]] = card
    return cards


def shipped_card(name: str) -> dict[str, Any]:
    """The model card of one shipped entry (``"vsait.toy_sim2photo"``); ``KeyError`` lists the shipped names."""
    cards = shipped_cards()
    if name not in cards:
        raise KeyError(f"no shipped weights called {name!r}; shipped: {', '.join(sorted(cards))}")
    return cards[name]


def register_shipped_weights() -> None:
    """Register every shipped model card (idempotent: names already registered are left alone)."""
    for name, card in shipped_cards().items():
        if name in PRETRAINED:
            continue
        register_pretrained(name, PretrainedEntry(
            method=card["method"],
            url=None,
            sha256=card["sha256"],
            filename=card["file"],
            format="bundle",
            direction=card.get("direction"),
            license=card.get("license", SHIPPED_LICENSE),
            origin=f"zoo, trained on the embedded toy world: {card['command']}",
            notes=f"{card['task']}; {card['iterations']} iterations ({card['train_seconds']:.0f} s on "
                  f"{card['machine']}); model card: zoo/pretrained/{name}.md",
            measured_metrics=dict(card.get("metrics", {})),
            shipped=True,
        ))


def _format_metric(value: Any) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def model_card_markdown(card: dict[str, Any]) -> str:
    """The model card of a shipped entry as Markdown (what ``zoo/pretrained/<name>.md`` holds)."""
    metrics = card.get("metrics", {})
    rows = "\n".join(f"| {key} | {_format_metric(value)} |" for key, value in metrics.items()) or "| (none) | |"
    return f"""# {card['name']}

{card['description']}

| | |
|---|---|
| method | `{card['method']}` (`{card['class_path']}`) |
| task | {card['task']} (direction `{card.get('direction') or 'all'}`) |
| data | {card['data']} |
| training | `{card['command']}`: {card['iterations']} iterations, {card['train_seconds']:.0f} s on {card['machine']} |
| config | `{card['config']}` |
| file | `{card['file']}`: {card['size_bytes'] / 1e6:.2f} MB, fp16, {card['parameters']:,} parameters |
| sha256 | `{card['sha256']}` |
| licence | {card['license']} |
| zoo version | {card['zoo_version']} |

## Measured on the toy world's test split

{card['metrics_protocol']}

| metric | value |
|---|---|
{rows}

## Use

```python
import zoo
model = zoo.load("{card['name']}")          # or zoo.load("{card['method']}") when no real-data weights are on disk
```

These weights are small and were trained for minutes on zoo's procedural toy world: they show what the method does
and are a starting point for fine-tuning, not a model for real images.
"""

