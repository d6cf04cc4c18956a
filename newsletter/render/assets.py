"""Files that articles reference by relative path (`images/chain.png`): found safely, named by content.

An asset is a file under the issues folder with an image or document extension, nothing else: no
Markdown (drafts), no hidden files, nothing a symlink or `..` leads out to. Its public name carries
a hash of its bytes (`images/chain.3f2a9c1b0e.png`), so a changed image gets a new URL and caches
may keep each one forever.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from urllib.parse import quote, unquote, urlsplit

IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
    ".avif": "image/avif",
    ".svg": "image/svg+xml",
}
DOCUMENT_TYPES = {".pdf": "application/pdf", ".epub": "application/epub+zip", ".zip": "application/zip"}
ASSET_TYPES = {**IMAGE_TYPES, **DOCUMENT_TYPES}
HASH_LENGTH = 10
_HASHED = re.compile(rf"(?P<stem>.+)\.(?P<hash>[0-9a-f]{{{HASH_LENGTH}}})(?P<suffix>\.[A-Za-z0-9]+)\Z")


@dataclass(frozen=True)
class Asset:
    """One servable file: where it is, its path under the issues folder, and its content hash."""

    path: Path
    relative: PurePosixPath  # images/chain.png
    digest: str

    @property
    def hashed_name(self) -> str:
        """`images/chain.3f2a9c1b0e.png`: the public name, new whenever the bytes change."""
        name = self.relative
        return str(name.with_name(f"{name.stem}.{self.digest}{name.suffix}"))

    @property
    def url_path(self) -> str:
        """The hashed name, percent-encoded for a URL."""
        return quote(self.hashed_name)

    @property
    def content_type(self) -> str:
        return ASSET_TYPES[self.relative.suffix.lower()]

    @property
    def is_image(self) -> bool:
        return self.relative.suffix.lower() in IMAGE_TYPES


@functools.lru_cache(maxsize=4096)
def _digest(path: str, mtime_ns: int, size: int) -> str:
    sha = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 16), b""):
            sha.update(block)
    return sha.hexdigest()[:HASH_LENGTH]


class AssetStore:
    """The assets of one issues folder: references from articles, and names from URLs."""

    def __init__(self, issues: Path) -> None:
        self.root = issues.resolve()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, AssetStore) and other.root == self.root

    def __hash__(self) -> int:
        return hash(self.root)

    def _asset(self, candidate: Path) -> Asset | None:
        """`candidate` if it is a servable file inside the root (after resolving symlinks and `..`)."""
        try:
            path = candidate.resolve()
            relative = path.relative_to(self.root)
        except (OSError, ValueError, RuntimeError):
            return None
        if any(part.startswith(".") for part in relative.parts) or path.suffix.lower() not in ASSET_TYPES:
            return None
        try:
            stat = path.stat()
        except OSError:
            return None
        if not path.is_file():
            return None
        digest = _digest(str(path), stat.st_mtime_ns, stat.st_size)
        return Asset(path, PurePosixPath(relative.as_posix()), digest)

    def referenced(self, reference: str, base_dir: Path) -> Asset | None:
        """The asset a relative URL in an article names (`images/chain.png`, `./a%20b.pdf#page=2`), if any."""
        parts = urlsplit(reference.strip())
        if parts.scheme or parts.netloc or not parts.path or parts.path.startswith(("/", "\\")):
            return None
        path = unquote(parts.path)
        if "\x00" in path or "\\" in path:
            return None
        return self._asset(base_dir / path)

    def named(self, url_path: str) -> tuple[Asset, bool] | None:
        """The asset a decoded `/assets/<url_path>` asks for, and whether its hash is the current one.

        A name without a hash, or with an outdated one (an email sent before the image changed), is
        still found; only the current hashed name may be cached for ever.
        """
        if not url_path or "\x00" in url_path or "\\" in url_path or url_path.startswith("/"):
            return None
        segments = url_path.split("/")
        if any(s in ("", ".", "..") or s.startswith(".") for s in segments):
            return None
        match = _HASHED.match(segments[-1])
        wanted = None
        if match:
            wanted = match["hash"]
            segments[-1] = match["stem"] + match["suffix"]
        asset = self._asset(self.root.joinpath(*segments))
        if asset is None and match:  # a file whose own name looks hashed
            asset = self._asset(self.root.joinpath(*url_path.split("/")))
            return (asset, False) if asset else None
        if asset is None:
            return None
        return asset, wanted == asset.digest
