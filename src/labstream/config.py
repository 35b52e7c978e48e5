"""Settings from config files in the seed's INI format, plus the environment.

A config file has `[cluster]` (alias `[broker]`), `[producer]` and `[consumer]`
sections whose keys go straight to librdkafka, and a program section
`[labstream]` (alias `[openmsi_directory_stream_service]`). Lines starting with
`#` or `;` are comments. Values may use `$VAR`, `${VAR}` and `${VAR:-default}`
from the environment so secrets stay out of files. A `cluster_producer_config`
(or `cluster_consumer_config`, `kafka_config`) key in the program section names
another file, or a built-in config, whose sections fill in what this file lacks.

`--config local` names the built-in config for the broker that
`labstream broker start` runs.
"""

from __future__ import annotations

import configparser
import difflib
import os
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from labstream.errors import ConfigError

__all__ = [
    "Config",
    "builtin_names",
    "did_you_mean",
    "ini_error",
    "is_secret",
    "load_config",
    "mask",
    "parse_bool",
]

CLIENT_SECTIONS = ("cluster", "producer", "consumer")
PROGRAM_SECTION = "labstream"
SECTION_ALIASES = {"broker": "cluster", "openmsi_directory_stream_service": PROGRAM_SECTION}
UNSUPPORTED_SECTIONS = {"kafkacrypto": "use labstream's own encryption settings instead"}
POINTER_KEYS = ("cluster_producer_config", "cluster_consumer_config", "kafka_config")
_ENV_RE = re.compile(r"\$(?:\{(?P<braced>\w+)(?::-(?P<default>[^}]*))?\}|(?P<bare>\w+))")
_SECRET_RE = re.compile(r"password|secret|token|private|credential|\.pem$|\.key$", re.I)
_MAX_POINTER_DEPTH = 8
BOOTSTRAP_KEYS = ("bootstrap.servers", "metadata.broker.list")
# librdkafka crashes on absurd values (a 10 MB bootstrap.servers segfaults it), so values are
# bounded before they reach it; inline PEM certificates and key bundles may be longer.
MAX_VALUE_BYTES = 8192
MAX_PEM_VALUE_BYTES = 1 << 20
MAX_KEY_CHARS = 200


@dataclass(frozen=True)
class Config:
    """A parsed config: section -> key -> value, and where each key came from."""

    path: str
    sections: dict[str, dict[str, str]] = field(default_factory=dict)
    origins: dict[tuple[str, str], str] = field(default_factory=dict)

    def section(self, name: str) -> dict[str, str]:
        return dict(self.sections.get(name, {}))

    def producer_settings(self) -> dict[str, str]:
        """librdkafka settings for a producer: `[cluster]` then `[producer]`."""
        return self._client("producer")

    def consumer_settings(self) -> dict[str, str]:
        """librdkafka settings for a consumer: `[cluster]` then `[consumer]`."""
        return self._client("consumer")

    def _client(self, role: str) -> dict[str, str]:
        settings = {**self.section("cluster"), **self.section(role)}
        if not any(settings.get(key, "").strip() for key in BOOTSTRAP_KEYS):
            raise ConfigError(
                f"{self.path}: no bootstrap.servers in [cluster] (or [{role}]); "
                "add e.g. `bootstrap.servers = broker.lab:9092`"
            )
        return settings

    def where(self, key: str, sections: tuple[str, ...] = CLIENT_SECTIONS) -> str:
        """Say which file and section a key came from, for error messages."""
        for name in reversed(sections):
            origin = self.origins.get((name, key))
            if origin is not None:
                return f"{origin} [{name}] {key}"
        return f"{self.path} {key}"

    def program(self, allowed: set[str]) -> dict[str, str]:
        """The program section, refusing keys this command does not know."""
        values = self.section(PROGRAM_SECTION)
        unknown = [key for key in values if key not in allowed and key not in POINTER_KEYS]
        if unknown:
            raise ConfigError(
                "; ".join(
                    f"{self.where(key, (PROGRAM_SECTION,))}: unknown option{did_you_mean(key, allowed)}"
                    for key in unknown
                )
            )
        return values

    def with_bootstrap(self, servers: str) -> Config:
        """This config talking to `servers` (`-b/--bootstrap`): [cluster] bootstrap.servers
        replaced, and any bootstrap key of [producer]/[consumer] dropped so none wins over it."""
        if not servers.strip():
            raise ConfigError("--bootstrap: give HOST:PORT[,HOST:PORT...]")
        _check_length("bootstrap.servers", servers, "--bootstrap")
        sections = {
            name: {k: v for k, v in values.items() if not (name in CLIENT_SECTIONS and k in BOOTSTRAP_KEYS)}
            for name, values in self.sections.items()
        }
        sections.setdefault("cluster", {})["bootstrap.servers"] = servers.strip()
        origins = {key: origin for key, origin in self.origins.items() if key[1] not in BOOTSTRAP_KEYS}
        origins[("cluster", "bootstrap.servers")] = "--bootstrap"
        return Config(self.path, sections, origins)

    def render(self) -> str:
        """The merged config as INI text with every secret masked."""
        lines = [f"# merged config from {self.path}"]
        for name, values in self.sections.items():
            lines.append(f"\n[{name}]")
            for key, value in values.items():
                origin = self.origins.get((name, key), self.path)
                lines.append(f"{key} = {mask(key, value)}    # from {origin}")
        return "\n".join(lines) + "\n"


def is_secret(key: str) -> bool:
    return bool(_SECRET_RE.search(key))


def mask(key: str, value: str) -> str:
    return "********" if is_secret(key) and value else value


def builtin_names() -> list[str]:
    folder = resources.files("labstream") / "configs"
    return sorted(p.name.removesuffix(".config") for p in folder.iterdir() if p.name.endswith(".config"))


def load_config(
    name_or_path: str | os.PathLike[str], *, relative_to: Path | None = None, bootstrap: str | None = None
) -> Config:
    """Read a config file (or built-in name) with its pointers and environment substitution;
    `bootstrap` (from `-b/--bootstrap`) replaces the file's bootstrap servers."""
    config = _load(str(name_or_path), relative_to, depth=0)
    return config.with_bootstrap(bootstrap) if bootstrap is not None else config


def parse_bool(value: str, where: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{where} = {mask(where, value)}: expected true or false")


def _resolve(name: str, relative_to: Path | None) -> Path:
    path = Path(name).expanduser()
    if not path.is_absolute() and relative_to is not None and (relative_to / path).is_file():
        return relative_to / path
    if path.is_file():
        return path
    stem = name.removesuffix(".config")
    if stem in builtin_names():
        return Path(str(resources.files("labstream") / "configs" / f"{stem}.config"))
    if _looks_like_address(name):
        raise ConfigError(
            f"config file {name!r} not found: it looks like a broker address; give it with "
            f"-b/--bootstrap {name} (-c/--config names a config file)"
        )
    raise ConfigError(f"config file {name!r} not found (built-in configs: {', '.join(builtin_names())})")


def did_you_mean(key: str, known: Iterable[str]) -> str:
    """' (did you mean NAME?)' for the closest known key, or '' when none is close."""
    close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def _looks_like_address(name: str) -> bool:
    """host:port (or several, comma-separated), as a bootstrap server list is written."""
    return all(re.fullmatch(r"\[?[\w.:-]+\]?:\d{1,5}", part.strip()) for part in name.split(","))


def _load(name: str, relative_to: Path | None, depth: int) -> Config:
    if depth > _MAX_POINTER_DEPTH:
        raise ConfigError(f"config {name!r}: too many nested *_config pointers (a loop?)")
    path = _resolve(name, relative_to)
    parser = configparser.ConfigParser(
        interpolation=None, comment_prefixes=("#", ";"), inline_comment_prefixes=None, strict=True
    )
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read_string(path.read_text(encoding="utf-8-sig"), source=str(path))
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
    except configparser.Error as exc:
        raise ConfigError(f"config file {path} is not valid INI: {ini_error(exc)}") from None
    sections: dict[str, dict[str, str]] = {}
    origins: dict[tuple[str, str], str] = {}
    for raw_name in parser.sections():
        section = _section_name(raw_name, path)
        for key, raw in parser.items(raw_name):
            value = _substitute(raw, path, raw_name, key)
            _check_length(key, value, f"{path} [{raw_name}] {key}")
            sections.setdefault(section, {})[key] = value
            origins[(section, key)] = str(path)
    config = Config(str(path), sections, origins)
    for key in POINTER_KEYS:
        target = sections.get(PROGRAM_SECTION, {}).get(key)
        if target:
            config = _merge(config, _load(target, path.parent, depth + 1))
    return config


def ini_error(exc: configparser.Error) -> str:
    """What is wrong, by line number, without the line's text: a line that failed to parse
    may be a secret (`sasl.password s3cret`, a `=` forgotten), and so may the value of any key."""
    if isinstance(exc, configparser.MissingSectionHeaderError):
        return (
            f"line {exc.lineno}: a setting before any [section] (the line is not shown: it may hold a secret)"
        )
    if isinstance(exc, configparser.ParsingError):
        lines = ", ".join(str(lineno) for lineno, _ in exc.errors)
        return f"line {lines}: not `key = value` (the line is not shown: it may hold a secret)"
    if isinstance(exc, configparser.DuplicateOptionError):
        return f"line {exc.lineno}: key {exc.option!r} given twice in [{exc.section}]"
    if isinstance(exc, configparser.DuplicateSectionError):
        return f"line {exc.lineno}: section [{exc.section}] given twice"
    return type(exc).__name__  # any other parse error: its text may quote the file


def _section_name(raw: str, path: Path) -> str:
    name = raw.strip().lower()
    name = SECTION_ALIASES.get(name, name)
    if name in UNSUPPORTED_SECTIONS:
        raise ConfigError(f"{path} [{raw}]: not supported by labstream: {UNSUPPORTED_SECTIONS[name]}")
    if name not in (*CLIENT_SECTIONS, PROGRAM_SECTION):
        known = ", ".join(f"[{s}]" for s in (*CLIENT_SECTIONS, PROGRAM_SECTION))
        raise ConfigError(f"{path} [{raw}]: unknown section (known: {known})")
    return name


def _check_length(key: str, value: str, where: str) -> None:
    if len(key) > MAX_KEY_CHARS:
        raise ConfigError(f"{where[:200]}...: key longer than {MAX_KEY_CHARS} characters")
    limit = MAX_PEM_VALUE_BYTES if key.endswith(".pem") else MAX_VALUE_BYTES
    size = len(value.encode("utf-8", "surrogatepass"))
    if size > limit:
        raise ConfigError(f"{where}: value of {size} bytes is longer than the {limit} allowed")


def _substitute(value: str, path: Path, section: str, key: str) -> str:
    def replace(match: re.Match[str]) -> str:
        var = match.group("braced") or match.group("bare")
        if var in os.environ:
            return os.environ[var]
        if match.group("default") is not None:
            return match.group("default")
        raise ConfigError(f"{path} [{section}] {key}: environment variable ${var} is not set")

    return _ENV_RE.sub(replace, value)


def _merge(own: Config, pointed: Config) -> Config:
    """Values in `own` win; `pointed` fills in the rest."""
    sections = {name: dict(values) for name, values in pointed.sections.items()}
    origins = dict(pointed.origins)
    for name, values in own.sections.items():
        sections.setdefault(name, {}).update(values)
    origins.update(own.origins)
    return Config(own.path, sections, origins)
