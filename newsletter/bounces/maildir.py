"""A local Maildir (what Postfix, Dovecot's LDA or fetchmail write): new/ and cur/, moved when processed.

A processed message is renamed into the Maildir++ sub-folder `.<processed_folder>/cur/` (one atomic
rename, the same file system), marked seen, so a mail client shows it there and a rerun never
reads it again.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from ..config import Config
from ..errors import MailboxError
from .message import MAX_BYTES, Incoming


class MaildirMailbox:
    def __init__(self, root: Path, processed: str) -> None:
        self.root = root
        self.processed = root / f".{processed.strip('.').replace('/', '.')}"

    @classmethod
    def open(cls, config: Config) -> MaildirMailbox:
        path = Path(config.bounces.maildir).expanduser()
        root = path if path.is_absolute() else config.root / path
        if not (root / "new").is_dir() or not (root / "cur").is_dir():
            raise MailboxError(f"{root}: not a Maildir (no new/ and cur/ folders); check [bounces] maildir")
        return cls(root, config.bounces.processed_folder)

    def describe(self) -> str:
        return f"maildir {self.root}"

    def messages(self) -> Iterator[tuple[str, Incoming]]:
        for sub in ("new", "cur"):
            try:
                names = sorted(n for n in os.listdir(self.root / sub) if not n.startswith("."))
            except OSError as exc:
                raise MailboxError(f"{self.root / sub}: cannot list the Maildir ({exc.strerror})") from None
            for name in names:
                try:
                    with open(self.root / sub / name, "rb") as fh:
                        data = fh.read(MAX_BYTES + 1)
                except FileNotFoundError:  # another reader took it meanwhile
                    continue
                except OSError as exc:
                    raise MailboxError(f"{self.root / sub / name}: cannot read ({exc.strerror})") from None
                yield f"{sub}/{name}", Incoming(data[:MAX_BYTES], truncated=len(data) > MAX_BYTES)

    def _folder(self) -> Path:
        for sub in ("cur", "new", "tmp"):
            (self.processed / sub).mkdir(parents=True, exist_ok=True)
        (self.processed / "maildirfolder").touch()
        return self.processed / "cur"

    def done(self, refs: Sequence[str]) -> None:
        if not refs:
            return
        try:
            target = self._folder()
            for ref in refs:
                name = ref.partition("/")[2]
                base, _sep, flags = name.partition(":2,")
                seen = f"{base}:2,{''.join(sorted(set(flags) | {'S'}))}"
                try:
                    os.replace(self.root / ref, target / seen)
                except FileNotFoundError:
                    continue
        except OSError as exc:
            raise MailboxError(f"{self.processed}: cannot move processed messages there ({exc.strerror})") from None

    def close(self) -> None:
        pass
