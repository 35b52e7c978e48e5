"""`labstream dashboard`: heartbeat + receipts topics (+ group lag) -> SQLite -> a live web page.

Input: the heartbeats every `watch`, `download` and `process` publishes, the receipts
downloaders and processors publish, and consumer-group lag from the admin API.
Output: a web page (Starlette + uvicorn, vendored uPlot, no CDN) with the whole fleet,
updated live over server-sent events; a JSON API; Prometheus metrics of the fleet.
"""

from __future__ import annotations

from labstream.dashboard.store import Store

__all__ = ["Store"]
