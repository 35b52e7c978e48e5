"""A single-node Kafka with a SASL_SSL listener (SCRAM-SHA-512), certificates made here.

ACLs are enforced (StandardAuthorizer, nothing allowed without an ACL). `admin` is a super
user; so is `ANONYMOUS`, the principal of the PLAINTEXT controller listener the broker uses
to register with its own controller (bound to 127.0.0.1; in production give the controller
listener SASL too). The other users get their rights from ACLs the tests create.
"""

from __future__ import annotations

import datetime
import ipaddress
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import resources
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from labstream.broker.jars import kafka_libs, require_java
from labstream.broker.local import cluster_id_for, format_storage, free_port

USER, PASSWORD = "alice", "alice-Secret-42"
ADMIN, ADMIN_PASSWORD = "admin", "admin-Secret-42"
# Principals of the ACL test: the instrument side (watcher/upload) and a downloader.
INSTRUMENT, INSTRUMENT_PASSWORD = "instrument", "instrument-Secret-42"
DOWNLOADER, DOWNLOADER_PASSWORD = "downloader", "downloader-Secret-42"
USERS = {
    ADMIN: ADMIN_PASSWORD,
    USER: PASSWORD,
    INSTRUMENT: INSTRUMENT_PASSWORD,
    DOWNLOADER: DOWNLOADER_PASSWORD,
}


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_certificates(folder: Path) -> tuple[Path, Path]:
    """(CA certificate for clients, broker key+chain PEM for the broker)."""
    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = _key(), _key()
    ca = (
        x509.CertificateBuilder()
        .subject_name(_name("labstream test CA"))
        .issuer_name(_name("labstream test CA"))
        .public_key(ca_key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name("localhost"))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=2))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .sign(ca_key, hashes.SHA256())
    )
    ca_path, keystore = folder / "ca.pem", folder / "broker.pem"
    ca_path.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    keystore.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        + cert.public_bytes(serialization.Encoding.PEM)
        + ca.public_bytes(serialization.Encoding.PEM)
    )
    return ca_path, keystore


@contextmanager
def sasl_ssl_broker(folder: Path, port: int) -> Iterator[tuple[str, Path]]:
    """Yields (bootstrap, CA file). Users: `USERS`; admin is also the inter-broker user."""
    ca, keystore = make_certificates(folder)
    cport = free_port(avoid=port)
    jaas = (
        f'org.apache.kafka.common.security.scram.ScramLoginModule required username="{ADMIN}" '
        f'password="{ADMIN_PASSWORD}";'
    )
    properties = folder / "server.properties"
    properties.write_text(f"""\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{cport}
listeners=SASL_SSL://127.0.0.1:{port},CONTROLLER://127.0.0.1:{cport}
advertised.listeners=SASL_SSL://127.0.0.1:{port}
controller.listener.names=CONTROLLER
inter.broker.listener.name=SASL_SSL
listener.security.protocol.map=SASL_SSL:SASL_SSL,CONTROLLER:PLAINTEXT
sasl.enabled.mechanisms=SCRAM-SHA-512
sasl.mechanism.inter.broker.protocol=SCRAM-SHA-512
listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config={jaas}
ssl.keystore.type=PEM
ssl.keystore.location={keystore}
ssl.truststore.type=PEM
ssl.truststore.location={ca}
log.dirs={folder / "data"}
num.partitions=2
offsets.topic.replication.factor=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
authorizer.class.name=org.apache.kafka.metadata.authorizer.StandardAuthorizer
super.users=User:{ADMIN};User:ANONYMOUS
allow.everyone.if.no.acl.found=false
""")
    java, classpath = require_java(), f"{kafka_libs()}/*"
    format_storage(
        java,
        classpath,
        properties,
        folder,
        cluster_id_for([port]),
        [
            arg
            for name, password in USERS.items()
            for arg in ("--add-scram", f"SCRAM-SHA-512=[name={name},password={password}]")
        ],
    )
    # The broker logs to broker.log through the package's log4j2 config (Kafka 4 uses log4j2).
    with open(folder / "broker.out", "wb") as log:
        log4j2 = resources.files("labstream.broker") / "log4j2.properties"
        proc = subprocess.Popen(
            [
                java,
                "-Xmx512m",
                f"-Dlog4j2.configurationFile={log4j2}",
                f"-Dlabstream.broker.log={folder / 'broker.log'}",
                "-cp",
                classpath,
                "kafka.Kafka",
                str(properties),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + 90
        log_file = folder / "broker.log"
        while not log_file.exists() or "started (kafka.server.KafkaRaftServer)" not in log_file.read_text(
            errors="replace"
        ):
            assert proc.poll() is None, (folder / "broker.out").read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "SASL_SSL broker did not start"
            time.sleep(0.5)
        yield f"127.0.0.1:{port}", ca
    finally:
        proc.terminate()
        proc.wait(60)
