"""One asyncio loop on one dedicated thread, for bleak, for the life of the app.

bleak's BlueZ backend keeps a D-Bus connection and a device manager per event
loop, so the app must never ``asyncio.run()`` per action (FIELD-NOTES.md). Other
threads hand work to the loop with :meth:`BleRuntime.submit` (a
``run_coroutine_threadsafe`` wrapper) and get a ``concurrent.futures.Future``.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import logging
import threading
import time
from collections.abc import Callable, Coroutine
from typing import Any, Final, TypeVar

logger = logging.getLogger(__name__)

THREAD_NAME: Final = "vigil-ble"
T = TypeVar("T")


class BleRuntime:
    """The BLE thread and its event loop.

    ``start()`` once at app start, ``stop()`` once at exit (after the BLE source
    has disconnected its devices; see :meth:`devices.ble.BleSource.stop`).
    """

    def __init__(self) -> None:
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._started = threading.Event()

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        if self._loop is None:
            raise RuntimeError("BleRuntime is not started")
        return self._loop

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    @property
    def thread(self) -> threading.Thread | None:
        return self._thread

    def start(self) -> None:
        """Start the thread and its loop; returns when the loop runs."""
        if self.running:
            return
        self._loop = asyncio.new_event_loop()
        self._loop.set_exception_handler(_log_loop_exception)
        self._started.clear()
        self._thread = threading.Thread(target=self._run, name=THREAD_NAME, daemon=True)
        self._thread.start()
        self._started.wait()

    def _run(self) -> None:
        assert self._loop is not None
        asyncio.set_event_loop(self._loop)
        self._loop.call_soon(self._started.set)
        try:
            self._loop.run_forever()
        finally:
            self._finish()

    def _finish(self) -> None:
        loop = self._loop
        assert loop is not None
        pending = [t for t in asyncio.all_tasks(loop) if not t.done()]
        for task in pending:
            task.cancel()
        if pending:
            loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()

    def submit(self, coro: Coroutine[Any, Any, T]) -> concurrent.futures.Future[T]:
        """Run ``coro`` on the BLE loop; callable from any thread."""
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def call(self, coro: Coroutine[Any, Any, T], timeout_s: float | None = 30.0) -> T:
        """Run ``coro`` on the BLE loop and wait for its result (not from the loop itself)."""
        if threading.current_thread() is self._thread:
            coro.close()
            raise RuntimeError("BleRuntime.call() from the BLE thread would deadlock")
        return self.submit(coro).result(timeout_s)

    def call_soon(self, fn: Callable[..., Any], *args: Any) -> None:
        """Schedule a plain callback on the BLE loop from any thread."""
        self.loop.call_soon_threadsafe(fn, *args)

    def thread_cpu_s(self) -> float:
        """CPU seconds the BLE thread has used so far (for the bench)."""

        async def cpu() -> float:
            return time.thread_time()

        return self.call(cpu(), 5.0)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Cancel what still runs on the loop, stop it and join the thread."""
        if self._thread is None or self._loop is None:
            return
        if self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout_s)
            if self._thread.is_alive():
                logger.error("BLE thread did not stop within %.1f s", timeout_s)
                return
        self._thread = None
        self._loop = None


def _log_loop_exception(loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
    exc = context.get("exception")
    logger.error("BLE loop: %s", context.get("message", "error"), exc_info=exc)
