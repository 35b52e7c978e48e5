"""Every bootstrap server and advertised broker resolves and answers; TLS and SASL work."""

from __future__ import annotations

import socket

from labstream.doctor.check import Check
from labstream.errors import BrokerUnreachableError, KafkaError
from labstream.kafka import describe_cluster, ping
from labstream.kafka.settings import LibrdkafkaConfig

__all__ = ["check_brokers", "check_kafka", "check_reachable", "parse_servers"]


def parse_servers(value: str) -> list[tuple[str, int]]:
    """host:port pairs of a bootstrap.servers value (`SASL_SSL://h:p` prefixes allowed)."""
    servers = []
    for item in value.split(","):
        item = item.strip().rsplit("://", 1)[-1]
        if not item:
            continue
        host, _, port = item.rpartition(":")
        if not host:
            host, port = port, "9092"
        servers.append((host.strip("[]"), int(port) if port.isdigit() else -1))
    return servers


def check_reachable(host: str, port: int, what: str, timeout: float) -> list[Check]:
    """DNS, then a TCP connection to the first address that takes one."""
    name = f"{what} {host}:{port}"
    if port <= 0:
        return [Check.fail(name, "no valid port", "write host:port, e.g. broker.lab:9092")]
    try:
        addresses = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        return [
            Check.fail(name, f"does not resolve: {exc.strerror}", "check the host name and DNS (/etc/hosts)")
        ]
    errors = []
    for family, kind, proto, _, address in addresses:
        try:
            with socket.socket(family, kind, proto) as sock:
                sock.settimeout(timeout)
                sock.connect(address)
            return [Check.ok(name, f"resolves to {address[0]}, port open")]
        except OSError as exc:
            errors.append(f"{address[0]}: {exc.strerror or exc}")
    return [
        Check.fail(
            name,
            f"resolves, but no TCP connection: {'; '.join(errors)}",
            "is the broker running, the port open in firewalls? (`labstream broker start` runs a local one)",
        )
    ]


def check_kafka(librdkafka: LibrdkafkaConfig, timeout: float) -> list[Check]:
    """A metadata request with the configured security: TLS and SASL succeed or fail here."""
    protocol = str(librdkafka.get("security.protocol", "plaintext")).upper()
    security = protocol
    if "SASL" in protocol:
        security += (
            f" ({librdkafka.get('sasl.mechanism', 'GSSAPI')} as {librdkafka.get('sasl.username', '?')})"
        )
    try:
        ping(librdkafka, timeout)
    except BrokerUnreachableError as exc:
        return [Check.fail("kafka metadata", str(exc), "start the broker or correct bootstrap.servers")]
    except KafkaError as exc:
        return [Check.fail("tls/sasl", f"{security}: {exc}", _security_fix(str(exc)))]
    checks = [Check.ok("kafka metadata", "the cluster answers a metadata request")]
    if protocol == "PLAINTEXT":
        checks.append(Check.info("tls/sasl", "PLAINTEXT: no encryption, no authentication"))
    else:
        checks.append(Check.ok("tls/sasl", f"{security} accepted"))
    return checks


def check_brokers(librdkafka: LibrdkafkaConfig, timeout: float) -> list[Check]:
    """Clients talk to the brokers' advertised addresses: each must answer from here too."""
    try:
        cluster = describe_cluster(librdkafka, timeout)
    except KafkaError as exc:
        return [Check.info("brokers", f"cannot list the brokers: {exc}")]
    checks = []
    for broker_id, host, port in cluster.brokers:
        checks += check_reachable(host, port, f"broker {broker_id} (advertised)", timeout)
    return checks


def _security_fix(message: str) -> str:
    lowered = message.lower()
    if "authentication" in lowered or "sasl" in lowered:
        return "check sasl.username/sasl.password and sasl.mechanism (the broker's user must exist)"
    if "ssl" in lowered or "certificate" in lowered or "tls" in lowered:
        return "check ssl.ca.location (the CA that signed the broker's certificate) and the host name"
    return "check security.protocol and the listener the port belongs to"
