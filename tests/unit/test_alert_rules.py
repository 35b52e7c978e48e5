"""The shipped Prometheus alert rules: valid for promtool, and each alert fires when it should.

promtool comes with Debian's `prometheus` package, which scripts/setup.sh installs; without
it these tests fail (they never skip) and say how to get it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from importlib.resources import files
from pathlib import Path

from prometheus_client import CollectorRegistry, generate_latest

from labstream.dashboard.metrics import fleet_metrics
from labstream.dashboard.store import Store
from labstream.heartbeat import Status
from labstream.metrics import ErrorLog
from labstream.metrics.exporter import Collect, process_metrics

RULES = Path(str(files("labstream.metrics") / "alerts.yml"))
RULE_TESTS = Path(__file__).with_name("alert_rules_test.yml")


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    found = shutil.which("promtool")
    assert found, "promtool not found: `bash scripts/setup.sh` installs it (apt-get install prometheus)"
    return subprocess.run([found, *map(str, args)], capture_output=True, text=True, timeout=60, check=False)


def test_shipped_rules_pass_promtool_check_rules() -> None:
    checked = promtool("check", "rules", RULES)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert "SUCCESS: 5 rules found" in checked.stdout


def test_each_alert_fires_when_unhealthy_and_stays_quiet_when_healthy() -> None:
    tested = promtool("test", "rules", RULE_TESTS)
    assert tested.returncode == 0, tested.stdout + tested.stderr


def test_every_shipped_alert_has_promtool_tests() -> None:
    alerts = set(re.findall(r"^\s*- alert: (\w+)", RULES.read_text(), re.MULTILINE))
    tested = set(re.findall(r"alertname: (\w+)", RULE_TESTS.read_text()))
    assert alerts == {
        "InstrumentStale",
        "ConsumerStale",
        "BacklogGrowing",
        "ConsumerFallingBehind",
        "VerificationFailures",
    }
    assert tested == alerts


def test_rules_name_only_metrics_the_exporters_emit(tmp_path: Path) -> None:
    registry = CollectorRegistry(auto_describe=False)
    with Store(tmp_path / "fleet.sqlite") as store, ErrorLog() as errors:
        collect = process_metrics("download", Status, errors, lambda: [("g", "t", 0)])
        for source in (collect, fleet_metrics(store)):
            registry.register(_Source(source))
        exposed = set(re.findall(r"^# TYPE (\w+)", generate_latest(registry).decode(), re.MULTILINE))
    named = set(re.findall(r"\blabstream_\w+", RULES.read_text()))
    assert named, "no labstream metric in the rules"
    assert named <= exposed, f"not exported: {sorted(named - exposed)}"


class _Source:
    """A prometheus_client collector around one of labstream's `Collect` callables."""

    def __init__(self, collect: Collect) -> None:
        self.collect = collect
