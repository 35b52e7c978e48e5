"""Complete, verified files -> user processors and sinks (S3, metadata, your code).

Input: files rebuilt and verified from a topic, by a consumer group.
Output: each file handed once to a processor (retried, then recorded as failed), offsets
committed only after it returned, receipts published for each outcome.
"""

from __future__ import annotations

from labstream.process.api import BaseProcessor, LivePrefix, ReceivedFile, load_processor
from labstream.process.runner import ProcessRunner

__all__ = ["BaseProcessor", "LivePrefix", "ProcessRunner", "ReceivedFile", "load_processor"]
