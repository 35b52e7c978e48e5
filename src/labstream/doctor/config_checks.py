"""The config parses, names a cluster, and has no key no command reads."""

from __future__ import annotations

from labstream.config import PROGRAM_SECTION, Config, load_config
from labstream.doctor.check import Check
from labstream.doctor.keys import known_program_keys
from labstream.errors import ConfigError

__all__ = ["check_config"]


def check_config(name: str, bootstrap: str | None = None) -> tuple[Config | None, list[Check]]:
    try:
        config = load_config(name, bootstrap=bootstrap)
    except ConfigError as exc:
        return None, [Check.fail("config", str(exc), "correct the file (see `labstream config show`)")]
    checks = [Check.ok("config", f"{config.path} parses")]
    known = known_program_keys()
    unknown = sorted(set(config.section(PROGRAM_SECTION)) - known)
    if unknown:
        where = "; ".join(config.where(k, (PROGRAM_SECTION,)) for k in unknown)
        checks.append(
            Check.fail(
                "config keys", f"unknown [labstream] keys: {where}", "remove or correct them (a typo?)"
            )
        )
    else:
        checks.append(Check.ok("config keys", f"no unknown [{PROGRAM_SECTION}] keys"))
    try:
        config.producer_settings()
        config.consumer_settings()
    except ConfigError as exc:
        checks.append(Check.fail("config cluster", str(exc), "add bootstrap.servers to [cluster]"))
        return None, checks
    return config, checks
