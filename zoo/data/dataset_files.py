"""The files of a dataset to translate: which are images, videos and annotations, and which image each annotation
belongs to.

``zoo translate --input DATASET --output OUT`` makes OUT a drop-in replacement for DATASET: images and videos are
translated, every other file is copied unchanged. :func:`plan_dataset` sorts the files of the input tree:

* **images**: files with an image suffix (:data:`zoo.data.io.IMG_EXTENSIONS`) that match one of the ``images`` globs
  (default: every image) and none of the ``annotations`` globs;
* **videos**: ``.mp4`` / ``.avi`` / ``.mov`` files (translated frame by frame);
* **annotations**: everything else: label maps, instance maps and masks (image files matching an ``annotations``
  glob, see :data:`DEFAULT_ANNOTATION_GLOBS`), JSON / TXT / XML boxes, lists, READMEs.

An annotation **belongs to** the image (or video) whose key starts its stem: the key is the image's stem without a
known image suffix (``image_suffixes``, Cityscapes' ``_leftImg8bit`` by default), and the annotation's stem must be
the key itself or the key followed by ``_``, ``-`` or ``.``. So ``frame_0001.json``, ``frame_0001_label.png`` and
``frame_0001.png`` under ``labels/`` belong to ``images/frame_0001.png``, and
``gtFine/train/aachen/aachen_000000_000019_gtFine_labelIds.png`` to
``leftImg8bit/train/aachen/aachen_000000_000019_leftImg8bit.png``. When several images have that key, the one whose
folder shares the most trailing folder names with the annotation's wins (``train/aachen`` above). An annotation of an
image is copied once its image is translated (and not at all when its image cannot be read); annotations that belong
to no image (``classes.json``) are copied first.

Globs are matched against the path relative to the input folder, with ``/`` separators: ``*`` and ``?`` stay within
a folder name, ``**/`` spans any number of folders, and a glob without ``/`` is matched against the file name alone
(``*.json``), as in ``.gitignore``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path, PurePosixPath

from zoo.data.io import IMG_EXTENSIONS
from zoo.data.video import VIDEO_EXTENSIONS

__all__ = ["DEFAULT_ANNOTATION_GLOBS", "DEFAULT_IMAGE_SUFFIXES", "LABEL_MAP_ANNOTATION_GLOBS",
           "DatasetPlan", "SourceFile", "glob_matches", "plan_dataset"]

#: Image files that are annotations by default, not pictures to translate: folders named like annotation folders,
#: and file names with the suffixes of label, instance and mask maps (Cityscapes ``*_gtFine_labelIds.png``, ...).
DEFAULT_ANNOTATION_GLOBS: tuple[str, ...] = (
    "**/labels/**", "**/label/**", "**/gtFine/**", "**/gtCoarse/**", "**/masks/**", "**/mask/**",
    "**/instances/**", "**/annotations/**", "**/segmentation/**", "**/semantic/**",
    "*_label.*", "*_labels.*", "*_labelIds.*", "*_instanceIds.*", "*_mask.*", "*_instance.*", "*_seg.*",
)
#: The annotation globs for models whose inputs are label maps (pix2pixHD): instance maps and masks stay annotations,
#: label maps are translated.
LABEL_MAP_ANNOTATION_GLOBS: tuple[str, ...] = (
    "**/instances/**", "**/masks/**", "**/mask/**", "*_instanceIds.*", "*_instance.*", "*_mask.*", "*_color.*",
)
#: Stem suffixes removed from an image's stem to get the key its annotations start with.
DEFAULT_IMAGE_SUFFIXES: tuple[str, ...] = ("_leftImg8bit",)
_SEPARATORS = "_-."


@dataclass
class SourceFile:
    """An image or video to translate.

    Attributes:
        path: the file.
        relative: its path relative to the input folder (the output mirrors it).
        sequence: the sequence it belongs to: its folder for an image (a folder of frames is a sequence), itself for a
            video.
        annotations: relative paths of the files that belong to it, copied beside its translation.
    """

    path: Path
    relative: PurePosixPath
    sequence: str
    annotations: list[PurePosixPath] = field(default_factory=list)

    @property
    def is_video(self) -> bool:
        return self.relative.suffix.lower() in VIDEO_EXTENSIONS


@dataclass
class DatasetPlan:
    """What :func:`plan_dataset` found: the sources to translate (images, then videos, each sorted by relative path)
    and the files that belong to none of them (copied unchanged)."""

    root: Path
    sources: list[SourceFile]
    unattached: list[PurePosixPath]

    @property
    def images(self) -> list[SourceFile]:
        return [s for s in self.sources if not s.is_video]

    @property
    def videos(self) -> list[SourceFile]:
        return [s for s in self.sources if s.is_video]


@lru_cache(maxsize=256)
def _glob_regex(pattern: str) -> re.Pattern[str]:
    """``pattern`` (``*``, ``?``, ``**/``) as a regular expression over a relative posix path."""
    parts, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            parts.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("**", i):
            parts.append(".*")
            i += 2
        elif pattern[i] == "*":
            parts.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            parts.append("[^/]")
            i += 1
        else:
            parts.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(parts) + r"\Z")


def glob_matches(relative: PurePosixPath | str, patterns: Iterable[str]) -> bool:
    """Whether the relative path matches one of ``patterns`` (a glob without ``/`` is matched against the name)."""
    relative = PurePosixPath(relative)
    text = relative.as_posix()
    for pattern in patterns:
        pattern = pattern.removeprefix("./")
        subject = text if "/" in pattern else relative.name
        if _glob_regex(pattern).match(subject):
            return True
    return False


def _image_key(stem: str, image_suffixes: Sequence[str]) -> str:
    for suffix in image_suffixes:
        if suffix and stem.endswith(suffix) and len(stem) > len(suffix):
            return stem[: -len(suffix)]
    return stem


def _stem_prefixes(stem: str) -> list[str]:
    """The stem and each of its prefixes that ends before a separator, longest first."""
    cuts = [i for i, c in enumerate(stem) if c in _SEPARATORS and i > 0]
    return [stem] + [stem[:i] for i in reversed(cuts)]


def _common_trailing_folders(a: PurePosixPath, b: PurePosixPath) -> int:
    count = 0
    for x, y in zip(reversed(a.parent.parts), reversed(b.parent.parts), strict=False):
        if x != y:
            break
        count += 1
    return count


def _owner(annotation: PurePosixPath, by_key: dict[str, list[SourceFile]]) -> SourceFile | None:
    """The source ``annotation`` belongs to: the longest key that starts its stem, then the candidate sharing the
    most trailing folder names, then the first by path."""
    for prefix in _stem_prefixes(annotation.stem):
        candidates = by_key.get(prefix)
        if candidates:
            return max(candidates, key=lambda s: _common_trailing_folders(s.relative, annotation))
    return None


def plan_dataset(
    source: str | os.PathLike[str],
    *,
    skip: str | os.PathLike[str] | None = None,
    images: Sequence[str] | None = None,
    annotations: Sequence[str] | None = None,
    image_suffixes: Sequence[str] = DEFAULT_IMAGE_SUFFIXES,
) -> DatasetPlan:
    """Sort the files of ``source`` (a folder, searched recursively, or one image or video file).

    Args:
        source: the input dataset.
        skip: a folder inside ``source`` to leave out (the output folder, when it lies inside the input).
        images: globs of the image files to translate (None: every image file).
        annotations: globs of the image files that are annotations, copied unchanged (None:
            :data:`DEFAULT_ANNOTATION_GLOBS` unless ``images`` is given; ``[]``: none). Files without an image or
            video suffix are always copied.
        image_suffixes: stem suffixes dropped from an image's stem to form its annotations' key.

    Returns:
        The plan. Hidden files and folders (names starting with ``.``) are left out.

    Raises:
        FileNotFoundError: ``source`` does not exist, or holds no image or video to translate.
    """
    root = Path(source)
    if not root.exists():
        raise FileNotFoundError(f"input '{root}' does not exist")
    if annotations is None:  # explicit --images globs win over the default annotation globs
        annotation_globs = () if images is not None else DEFAULT_ANNOTATION_GLOBS
    else:
        annotation_globs = tuple(annotations)
    if root.is_file():
        relative = PurePosixPath(root.name)
        if not root.name.lower().endswith((*IMG_EXTENSIONS, *VIDEO_EXTENSIONS)):
            raise FileNotFoundError(f"input '{root}' is neither an image ({', '.join(IMG_EXTENSIONS)}) nor a video "
                                    f"({', '.join(VIDEO_EXTENSIONS)})")
        return DatasetPlan(root.parent, [SourceFile(root, relative, str(relative))], [])
    skip_dir = Path(skip).resolve() if skip is not None else None
    sources: list[SourceFile] = []
    others: list[PurePosixPath] = []
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (skip_dir is None or (Path(folder) / d).resolve() != skip_dir))
        for name in sorted(names):
            if name.startswith("."):
                continue
            path = Path(folder) / name
            relative = PurePosixPath(path.relative_to(root).as_posix())
            lower = name.lower()
            if lower.endswith(VIDEO_EXTENSIONS):
                sources.append(SourceFile(path, relative, relative.as_posix()))
            elif (lower.endswith(IMG_EXTENSIONS) and (images is None or glob_matches(relative, images))
                  and not glob_matches(relative, annotation_globs)):
                sources.append(SourceFile(path, relative, relative.parent.as_posix()))
            else:
                others.append(relative)
    if not sources:
        held = sum(1 for relative in others if relative.name.lower().endswith(IMG_EXTENSIONS))
        why = (f"its {held} image file(s) all match the annotation globs {list(annotation_globs)}; pass --images GLOB "
               "to choose the images to translate" if held else
               f"image suffixes {', '.join(IMG_EXTENSIONS)}, videos {', '.join(VIDEO_EXTENSIONS)}")
        raise FileNotFoundError(f"No images found in or below '{root}' ({why})")
    sources.sort(key=lambda s: (s.is_video, s.relative.as_posix()))
    by_key: dict[str, list[SourceFile]] = {}
    for item in sources:
        by_key.setdefault(_image_key(item.relative.stem, image_suffixes), []).append(item)
    unattached = []
    for relative in others:
        owner = _owner(relative, by_key)
        if owner is None:
            unattached.append(relative)
        else:
            owner.annotations.append(relative)
    return DatasetPlan(root, sources, unattached)
