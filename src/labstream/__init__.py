"""labstream: stream laboratory instrument files through Apache Kafka, verified end to end.

Data flow, one subpackage per stage::

    watch/ -> upload/ -> kafka/ (wire/ chunk messages) -> download/ -> files on disk
"""

from __future__ import annotations

__all__ = ["__version__"]
__version__ = "0.1.0"
