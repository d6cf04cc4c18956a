"""Live reload: watch the files a render reads, re-render what open pages show, tell them (SSE).

Two watchers: one recursive over the issues and templates folders, one over the config file's
folder (not recursive: the config file and the subscriber list live there, `build/`, `outbox/` and
`.git` must not wake us). When the config names other folders, or a watched folder appears, the
watchers restart with the new paths.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anyio
from starlette.concurrency import run_in_threadpool
from watchfiles import Change, awatch

from .preview_render import Previewer

# watchfiles checks for changes every `step` ms and yields once a check finds no new ones (~2 steps).
WATCH_STEP_MS = 10


@dataclass
class Hub:
    """Open event streams; each gets every change notice (a page decides whether it cares)."""

    queues: dict[asyncio.Queue[str | None], str] = field(default_factory=dict)
    version: int = 0

    def subscribe(self, slug: str = "") -> asyncio.Queue[str | None]:
        """A stream for a page; `slug` names the article it shows ("" for the index)."""
        queue: asyncio.Queue[str | None] = asyncio.Queue()
        self.queues[queue] = slug
        return queue

    def unsubscribe(self, queue: asyncio.Queue[str | None]) -> None:
        self.queues.pop(queue, None)

    def open_slugs(self) -> set[str]:
        return {slug for slug in self.queues.values() if slug}

    def publish(self, changed: list[str]) -> None:
        self.version += 1
        data = json.dumps({"version": self.version, "changed": changed})
        for queue in self.queues:
            queue.put_nowait(data)

    def close(self) -> None:
        for queue in self.queues:
            queue.put_nowait(None)


def _watched(previewer: Previewer) -> tuple[list[Path], Path]:
    config = previewer.last_good_config
    folders = [p.resolve() for p in (config.path("issues"), config.path("templates")) if p.is_dir()]
    return folders, config.root.resolve()


def _root_filter(previewer: Previewer) -> Callable[[Change, str], bool]:
    """In the config folder, only the config file, the subscriber list and the watched folders matter."""

    def accept(change: Change, path: str) -> bool:
        config = previewer.last_good_config
        interesting = {config.path("subscribers").resolve(), config.path("issues").resolve()}
        interesting.add(config.path("templates").resolve())
        if config.source is not None:
            interesting.add(config.source.resolve())
        return Path(path).resolve() in interesting

    return accept


async def _pump(
    changes: asyncio.Queue[set[tuple[Change, str]]], restart: anyio.Event, *paths: Path, **options: Any
) -> None:
    async for batch in awatch(*paths, step=WATCH_STEP_MS, stop_event=restart, **options):
        changes.put_nowait(batch)


async def watch(previewer: Previewer, hub: Hub, stop: anyio.Event) -> None:
    """Until `stop`: on each batch of changes, reload what changed, re-render open pages, publish."""
    while not stop.is_set():
        folders, root = _watched(previewer)
        restart = anyio.Event()
        changes: asyncio.Queue[set[tuple[Change, str]]] = asyncio.Queue()
        async with anyio.create_task_group() as tasks:
            if folders:
                tasks.start_soon(functools.partial(_pump, changes, restart, *folders, recursive=True))
            only = _root_filter(previewer)
            tasks.start_soon(functools.partial(_pump, changes, restart, root, recursive=False, watch_filter=only))
            while not restart.is_set() and not stop.is_set():
                batch: set[tuple[Change, str]] = set()
                with anyio.move_on_after(0.5):  # wake up now and then to notice `stop`
                    batch = await changes.get()
                while not changes.empty():
                    batch |= changes.get_nowait()
                if batch and await _apply(previewer, hub, batch, folders):
                    restart.set()
            restart.set()
            tasks.cancel_scope.cancel()


async def _apply(previewer: Previewer, hub: Hub, batch: set[tuple[Change, str]], folders: list[Path]) -> bool:
    """Handle one batch; True when the watchers must restart (config or folder layout changed)."""
    config = previewer.last_good_config
    paths = sorted({Path(p) for _, p in batch})
    source = config.source.resolve() if config.source is not None else None
    if source is not None and any(p.resolve() == source for p in paths):
        previewer.reload_config()
    restart = _watched(previewer)[0] != folders  # [paths] changed, or a watched folder appeared
    # Re-render what open pages show before telling them: the event means "new HTML is ready".
    await run_in_threadpool(_rerender, previewer, hub.open_slugs())
    root = config.root.resolve()
    hub.publish([str(p.relative_to(root)) if p.is_relative_to(root) else str(p) for p in paths])
    return restart


def _rerender(previewer: Previewer, slugs: set[str]) -> None:
    """Only the articles an open page shows; the index re-renders the rest when it asks."""
    for slug in sorted(slugs):
        previewer.article(slug)
