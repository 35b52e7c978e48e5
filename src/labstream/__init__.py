"""labstream: stream laboratory instrument files through Apache Kafka, verified end to end.

Data flow, one subpackage per stage::

    watch/ -> upload/ -> kafka/ (wire/ chunk messages) -> download/ -> process/ -> sinks
                              receipts/ and heartbeat/ flow back to the instruments

Use it as a library: build a stage's settings from a config file (the same INI file the
command line reads), then run it; every runner takes a stop `threading.Event`::

    import threading
    import labstream

    config = labstream.load_config("lab.config")
    settings = labstream.download_settings(config, {"out_dir": "archive", "topic": "xrd-lab"})
    report = labstream.run_download(settings, threading.Event())

The names below are the public API; they are imported on first use, so `import labstream`
stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    # runners: settings -> a running stage
    "run_watch": "labstream.runners",
    "run_upload": "labstream.runners",
    "run_download": "labstream.runners",
    "run_process": "labstream.runners",
    # settings builders
    "load_config": "labstream.config",
    "watch_settings": "labstream.settings",
    "upload_settings": "labstream.settings",
    "download_settings": "labstream.settings",
    "process_settings": "labstream.settings",
    # your own processors
    "BaseProcessor": "labstream.process",
    "ReceivedFile": "labstream.process",
    "LivePrefix": "labstream.process",
    "SourceFile": "labstream.upload",
    "Verdict": "labstream.outcomes",
    # the error tree
    "LabstreamError": "labstream.errors",
    "ConfigError": "labstream.errors",
    "WireError": "labstream.errors",
    "KafkaError": "labstream.errors",
    "BrokerUnreachableError": "labstream.errors",
    "DeliveryError": "labstream.errors",
    "SourceFileError": "labstream.errors",
    "OutputError": "labstream.errors",
}

__all__ = ["__version__", *_PUBLIC]


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'labstream' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
