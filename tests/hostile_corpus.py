"""A hostile folder, generated on a real disk for each test that needs it (no committed binaries).

:func:`build_corpus` writes a storage root holding ``inbox/`` and, beside the root, an ``outside/`` folder; it
returns what a listing and a read of ``inbox`` must give for each entry: a row kind (``""`` for a readable image),
or a skip reason with its count. Each class of the issue that asked for it ("Every file accounted for") is here:
formats intake refuses, names a suffix filter dropped, names that write to a terminal, special files, links out of
the root, a link loop, an ignored file and an in-flight temporary file.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from image_samples import encode, noise
from PIL import Image

from causalprint.storage.listing import SKIP_LINKED_FOLDER, SKIP_TEMPORARY, ignore_reason

IGNORE = ("*.ignored",)


@dataclass
class Corpus:
    root: Path  # the storage root
    inbox: Path  # the scanned folder, inside the root
    outside: Path  # a folder beside the root, which nothing may read
    kinds: dict[str, str] = field(default_factory=dict)  # path below inbox -> error kind ("" = an image)
    skipped: dict[str, int] = field(default_factory=dict)  # skip reason -> count

    def uri(self, relative: str) -> str:
        return f"{self.inbox}/{relative}"


def _png(seed: int) -> bytes:
    return encode(Image.fromarray(noise(20, 24, seed=seed)), "PNG")


def build_corpus(base: Path, root: Path | None = None, folder: str = "inbox") -> Corpus:
    """Write the corpus into ``root / folder`` (default root: ``base / "root"``), its outside targets into
    ``base / "outside"``; ``base`` is a fresh temporary folder outside ``root``."""
    root = root or base / "root"
    corpus = Corpus(root=root, inbox=root / folder, outside=base / "outside")
    (corpus.inbox / "sub").mkdir(parents=True)
    corpus.outside.mkdir()
    frames = [Image.fromarray(noise(16, 16, seed=s)) for s in (1, 2)]
    animated = encode(frames[0], "GIF", save_all=True, append_images=frames[1:])
    regular = {
        "a.png": (_png(1), ""),
        "b.jpg": (encode(Image.fromarray(noise(20, 20, seed=2)), "JPEG"), ""),
        "sub/c.webp": (encode(Image.fromarray(noise(20, 20, seed=3)), "WEBP", lossless=True), ""),
        "photo.bmp": (encode(frames[0], "BMP"), "unsupported_format"),
        "scan.tiff": (encode(frames[0], "TIFF"), "unsupported_format"),
        "moving.gif": (animated, "unsupported_format"),
        "no-extension": (_png(4), ""),
        "x.png.exe": (_png(5), ""),
        "UPPER.PNG": (_png(6), ""),
        "trailing space.png ": (_png(7), ""),
        "right\u202egnp.exe": (_png(8), ""),  # a right-to-left override: shows as "exe.png"
        "forged\n| row | 1 |.png": (b"plain text", "not_an_image"),
        "\x1b[2J\x1b[31mred.png": (b"", "empty"),
        "notes.txt": (b"meeting notes\n", "not_an_image"),
        "skip-me.ignored": (_png(9), None),
        ".a.png.123.tmp": (_png(10), None),  # the name an atomic write in flight has
    }
    for name, (data, kind) in regular.items():
        (corpus.inbox / name).write_bytes(data)
        if kind is not None:
            corpus.kinds[name] = kind
    os.mkfifo(corpus.inbox / "pipe.png")
    corpus.kinds["pipe.png"] = "not_a_file"

    # Links out of the root: a system file, a device, an outside image and an outside folder of images.
    (corpus.outside / "secret.png").write_bytes(_png(11))
    (corpus.outside / "more").mkdir()
    for i in range(3):
        (corpus.outside / "more" / f"{i}.png").write_bytes(_png(20 + i))
    for name, target in {
        "passwd.png": "/etc/passwd",
        "zero.png": "/dev/zero",
        "outside-image.png": corpus.outside / "secret.png",
        "outside-folder": corpus.outside / "more",
    }.items():
        (corpus.inbox / name).symlink_to(target)
        corpus.kinds[name] = "outside_root"

    # Links inside the root: a file (read), a loop back to the inbox (skipped) and a dangling link.
    (corpus.inbox / "alias.png").symlink_to(corpus.inbox / "a.png")
    corpus.kinds["alias.png"] = ""
    (corpus.inbox / "sub" / "up").symlink_to("..")
    (corpus.inbox / "gone.png").symlink_to(corpus.inbox / "never-written.png")
    corpus.kinds["gone.png"] = "read_failed"
    corpus.skipped = {SKIP_LINKED_FOLDER: 1, SKIP_TEMPORARY: 1, ignore_reason(IGNORE[0]): 1}
    return corpus
