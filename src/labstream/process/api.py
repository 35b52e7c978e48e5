"""What a processor sees and how it is found.

A processor is a function `def process(file: ReceivedFile) -> None`, or a class whose
instances have `process(file)` (and optionally `close()`), built with the `--option`
key=value pairs as keyword arguments. Raising means "failed"; returning means "done".

A class that also has `process_live(prefix: LivePrefix)` is handed each verified prefix of a
live file as it grows (docs/guides/live.md); the whole file still goes to `process` once,
when its send closes.
"""

from __future__ import annotations

import importlib
import importlib.util
import inspect
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from labstream.errors import ConfigError

__all__ = ["BUILTIN", "BaseProcessor", "LivePrefix", "ReceivedFile", "load_processor"]

BUILTIN = {"s3": "labstream.process.s3:S3Sink", "metadata": "labstream.process.metadata:MetadataPublisher"}


@dataclass(frozen=True)
class ReceivedFile:
    """One complete file whose size and hash were verified."""

    relpath: str
    path: Path  # a readable local copy; do not keep it, it is removed after `process`
    size: int
    digest: str  # hex
    hash_name: str  # "sha256" (labstream) or "sha512" (openmsistream)
    topic: str
    metadata: dict[str, Any] = field(default_factory=dict)
    source: str = ""  # the instrument that sent it ("" when the send named none)

    def read_bytes(self) -> bytes:
        return self.path.read_bytes()


@dataclass(frozen=True)
class LivePrefix:
    """The first `size` bytes of a live file, verified (`digest`: their SHA-256, hex).

    `path` is the file being received: it may hold more bytes by the time it is read (they
    are verified too); read only the first `size` for what `digest` covers. A prefix is
    handed over once, when it is verified; after a restart, the next one comes.
    """

    relpath: str
    path: Path
    size: int
    digest: str
    topic: str
    source: str = ""


class BaseProcessor:
    """Optional base class: override `process`; `close` runs once at shutdown."""

    def process(self, file: ReceivedFile) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release what the processor holds (connections, producers)."""


class _FunctionProcessor(BaseProcessor):
    def __init__(self, function: Callable[[ReceivedFile], Any]) -> None:
        self._function = function

    def process(self, file: ReceivedFile) -> None:
        self._function(file)


def load_processor(spec: str, options: dict[str, str], context: dict[str, Any]) -> BaseProcessor:
    """Build the processor named by "module:Name", "path/to/file.py:Name" or a built-in name.

    Classes get `options` as keyword arguments, plus the `context` keys they ask for
    (config, topic) by parameter name.
    """
    target = _resolve(BUILTIN.get(spec, spec))
    if inspect.isclass(target):
        params = inspect.signature(target).parameters
        extra = {k: v for k, v in context.items() if k in params}
        _require_options(spec, params, {**options, **extra})
        try:
            instance = target(**options, **extra)
        except TypeError as exc:
            raise ConfigError(f"processor {spec}: {exc}") from exc
        if not callable(getattr(instance, "process", None)):
            raise ConfigError(f"processor {spec}: instances have no process(file) method")
        return instance if isinstance(instance, BaseProcessor) else _Adapter(instance)
    if callable(target):
        if options:
            raise ConfigError(f"processor {spec} is a function: it takes no --option")
        return _FunctionProcessor(target)
    raise ConfigError(f"processor {spec} is neither a class nor a function")


def _require_options(spec: str, params: Mapping[str, inspect.Parameter], given: Mapping[str, Any]) -> None:
    """A clear error naming the options a processor class needs and did not get (instead of
    Python's "__init__() missing 1 required positional argument")."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    missing = [
        name
        for name, param in params.items()
        if param.kind in kinds and param.default is inspect.Parameter.empty and name not in given
    ]
    if missing:
        needed = " ".join(f"-o {name}=VALUE" for name in missing)
        in_file = ", ".join(f"{name}=VALUE" for name in missing)
        raise ConfigError(
            f"processor {spec} needs {needed} (or processor_options = {in_file} in [labstream])"
        )


class _Adapter(BaseProcessor):
    def __init__(self, instance: Any) -> None:
        self._instance = instance
        if callable(getattr(instance, "process_live", None)):
            self.process_live = instance.process_live

    def process(self, file: ReceivedFile) -> None:
        self._instance.process(file)

    def close(self) -> None:
        if callable(getattr(self._instance, "close", None)):
            self._instance.close()


def _resolve(spec: str) -> Any:
    module_name, sep, attribute = spec.rpartition(":")
    if not sep or not module_name or not attribute:
        raise ConfigError(f"processor {spec!r}: expected module:Name, file.py:Name, s3 or metadata")
    try:
        if module_name.endswith(".py"):
            path = Path(module_name)
            loader = importlib.util.spec_from_file_location(path.stem, path)
            if loader is None or loader.loader is None:
                raise ImportError(f"cannot load {path}")
            module = importlib.util.module_from_spec(loader)
            sys.modules[path.stem] = module
            loader.loader.exec_module(module)
        else:
            module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ConfigError(f"processor {spec!r}: cannot import {module_name}: {exc}") from exc
    try:
        return getattr(module, attribute)
    except AttributeError:
        raise ConfigError(f"processor {spec!r}: {module_name} has no {attribute}") from None
