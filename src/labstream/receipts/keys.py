"""Which receipt keys a command uses: its option, else the `[labstream]` config section.

`receipts_signing_key` (downloaders, processors) names the group's private key file;
`receipts_trusted_keys` (watcher, status, upload --wait-verified) a comma-separated list
of public key files and/or folders of `*.pub` files.
"""

from __future__ import annotations

from labstream.config import PROGRAM_SECTION, Config
from labstream.errors import ConfigError
from labstream.receipts.signing import KEYGEN_HINT, SigningKey, TrustedKeys

__all__ = ["SIGNING_KEY", "TRUSTED_KEYS", "require_trusted", "signing_key", "trusted_keys"]

SIGNING_KEY = "receipts_signing_key"
TRUSTED_KEYS = "receipts_trusted_keys"


def signing_key(config: Config, given: str | None) -> SigningKey | None:
    path = given or config.section(PROGRAM_SECTION).get(SIGNING_KEY)
    return SigningKey.load(path) if path else None


def trusted_keys(config: Config, given: str | None) -> TrustedKeys:
    return TrustedKeys.load(given or config.section(PROGRAM_SECTION).get(TRUSTED_KEYS))


def require_trusted(trusted: TrustedKeys, what: str) -> TrustedKeys:
    """`trusted`, or a ConfigError saying how to make keys if there are none."""
    if not len(trusted):
        raise ConfigError(
            f"{what} needs trusted receipt keys (--receipts-trusted-keys or {TRUSTED_KEYS} in "
            f"[{PROGRAM_SECTION}]): {KEYGEN_HINT}, sign receipts with NAME and trust NAME.pub"
        )
    return trusted
