"""The one ``Assistant`` behind every request: its models loaded once, in the background, at start-up,
and used by one request at a time.

llama.cpp is not thread-safe, and neither are the tokenizers the text embedder shares between indexing
and questions, so every use of a model (loading, indexing, answering, captioning, searching) holds
``lock``. Requests that need no model (listing videos, sending media) never wait for it.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from videoqa.errors import VideoqaError
from videoqa.serve.errors import ApiError

if TYPE_CHECKING:
    from videoqa.assistant import Assistant

log = logging.getLogger("videoqa.serve")


class Engine:
    """An assistant, the lock its models are used under, and whether they are loaded yet."""

    def __init__(self, assistant: Assistant, on_failed: Callable[[str], None] | None = None) -> None:
        self.assistant = assistant
        self.lock = threading.Lock()
        self._loaded = threading.Event()
        self._failure: str | None = None
        self._on_failed = on_failed
        self._loader: threading.Thread | None = None

    @property
    def model_name(self) -> str:
        """The answering model as the user named it (a file's name, not its whole path)."""
        return Path(self.assistant.options.llm).name or self.assistant.options.llm

    @property
    def ready(self) -> bool:
        return self._loaded.is_set() and self._failure is None

    def start_loading(self) -> None:
        """Load every model in a background thread; requests get 503 until it is done."""
        if self._loader is None:
            self._loader = threading.Thread(target=self._load, name="videoqa-load-models", daemon=True)
            self._loader.start()

    def _load(self) -> None:
        log.info("loading the models (%s)", self.model_name)
        try:
            with self.lock:
                self.assistant.load_models()
        except VideoqaError as exc:
            self._fail(str(exc))
        except Exception as exc:  # a bug: logged with its traceback, the server stops
            log.error("loading the models failed", exc_info=exc)
            self._fail(f"internal error: {type(exc).__name__}: {exc}")
        else:
            log.info("models loaded; ready for questions")
        finally:
            self._loaded.set()

    def _fail(self, message: str) -> None:
        self._failure = message
        if self._on_failed is not None:
            self._on_failed(message)

    def require_ready(self) -> None:
        """503 while the models load (or when they could not be loaded)."""
        if self._failure is not None:
            raise ApiError(503, f"the models could not be loaded: {self._failure}", code="models_failed")
        if not self._loaded.is_set():
            raise ApiError(503, "the models are still loading; try again shortly", code="models_loading")

    def wait_loaded(self) -> None:
        """Block until loading has ended; ``ApiError`` 503 when it failed."""
        self._loaded.wait()
        self.require_ready()
