"""Loaded models kept in memory between requests, the least recently used dropped first.

Loading SD 1.5 from disk takes seconds and SDXL more; a server switching among a few models
should not pay that every time. The cache holds at most ``max_models`` pipelines (each is
several GB for real models), keyed by the file, its modification time (a replaced file is
loaded again) and the load options.
"""

from __future__ import annotations

import gc
import threading
from collections import OrderedDict

from sfumato.engine.checkpoint import ModelSource
from sfumato.engine.loader import LoadedModel, LoadOptions, load_model


class ModelCache:
    def __init__(self, max_models: int = 1):
        self.max_models = max(1, max_models)
        self._models: OrderedDict[tuple, LoadedModel] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = 0  # how many times a model was read from disk (for tests and stats)

    def get(self, source: ModelSource, options: LoadOptions) -> LoadedModel:
        key = (str(source.path), source.path.stat().st_mtime_ns, options)
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            # make room before loading: two large models side by side may not fit
            while len(self._models) >= self.max_models:
                self._models.popitem(last=False)
                gc.collect()
            model = load_model(source, options)
            self.loads += 1
            self._models[key] = model
            return model

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            gc.collect()
