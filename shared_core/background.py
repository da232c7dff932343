"""A loop that runs beside a service's requests, as a task of its event loop."""

from __future__ import annotations

import asyncio
import contextlib


class BackgroundTask:
    """``start()`` once the service is up, ``stop()`` at shutdown (cancels the loop and waits
    for it to end). Subclasses write ``run()``, the loop itself, and name it."""

    task_name = "background-task"
    _task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self.run(), name=self.task_name)

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def run(self) -> None:
        raise NotImplementedError
