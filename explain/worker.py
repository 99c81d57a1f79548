"""The explain thread: its own beat model, a request queue, results by callback.

The review UI (or any caller) submits :class:`~explain.context.BeatRequest`
objects; the thread explains them one at a time with one torch thread and
calls ``done(explanation, error)`` on the explain thread. The model is loaded
on that thread, so it never shares a module with the inference thread.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable
from pathlib import Path

from explain import Explanation
from explain.attribute import Explainer
from explain.context import BeatRequest

logger = logging.getLogger(__name__)

#: ``done(explanation, error)``; exactly one of the two is None.
Done = Callable[[Explanation | None, BaseException | None], None]


class ExplainerThread:
    """A dedicated explain thread holding its own :class:`Explainer`.

    The model is loaded on the new thread (never shared with the inference
    thread); requests are served one at a time in submission order, with one
    torch thread.

    Parameters
    ----------
    model_path
        Beat model file.
    factory
        Builds the explainer instead (called on the explain thread); for tests
        and in-memory models.
    name
        Thread name.
    """

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        factory: Callable[[], Explainer] | None = None,
        name: str = "vigil-explain",
    ) -> None:
        if factory is None and model_path is None:
            raise ValueError("ExplainerThread needs a model_path or a factory")
        self._factory = factory or (lambda: Explainer(model_path))
        self._queue: queue.SimpleQueue[tuple[BeatRequest, Done] | None] = queue.SimpleQueue()
        self._ready = threading.Event()
        self._explainer: Explainer | None = None
        self._start_error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def submit(self, request: BeatRequest, done: Done) -> None:
        """Queue a beat; ``done`` is called **on the explain thread** when it is explained.

        A Qt caller re-emits the result through a queued signal to reach the GUI thread.
        """
        self._queue.put((request, done))

    def wait_ready(self, timeout_s: float | None = None) -> bool:
        """Block until the model is loaded (or failed to load); True when ready."""
        return self._ready.wait(timeout_s) and self._explainer is not None

    @property
    def model_version(self) -> str:
        """Version of the explain thread's model ("" until loaded)."""
        return "" if self._explainer is None else self._explainer.model_version

    def close(self, timeout_s: float = 10.0) -> None:
        """Serve what is queued, then stop the thread (called by its owner's thread)."""
        self._queue.put(None)
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.error("explain thread did not stop within %.1f s", timeout_s)

    def __enter__(self) -> ExplainerThread:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _run(self) -> None:
        """Explain thread body."""
        import torch

        torch.set_num_threads(1)
        try:
            self._explainer = self._factory()
        except Exception as exc:  # reported to every request: the owner raises a technical alarm
            logger.exception("explain thread could not load its model")
            self._start_error = exc
        finally:
            self._ready.set()
        while (item := self._queue.get()) is not None:
            request, done = item
            try:
                if self._explainer is None:
                    raise RuntimeError("explainer not available") from self._start_error
                result = self._explainer.explain(request)
            except Exception as exc:
                logger.exception("explanation failed for beat %d", request.beat_index)
                self._call(done, None, exc)
            else:
                self._call(done, result, None)

    @staticmethod
    def _call(done: Done, result: Explanation | None, error: BaseException | None) -> None:
        try:
            done(result, error)
        except Exception:
            logger.exception("explanation callback raised")
