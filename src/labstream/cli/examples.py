"""The `Examples:` block of every command's --help, taken from the README."""

from __future__ import annotations

__all__ = ["EXAMPLES", "epilog_of"]

EXAMPLES: dict[str, tuple[str, ...]] = {
    "cli": (  # `labstream --help`
        "labstream broker start                 # a local Kafka broker for trying it",
        "labstream demo                         # upload a sample folder, download it, verify every file",
        "labstream watch /data/xrd --topic xrd-lab --config lab.config",
    ),
    "broker": ("labstream broker start", "labstream broker status --port 9092"),
    "broker start": ("labstream broker start                 # needs Java 17+ and Maven",),
    "broker stop": ("labstream broker stop",),
    "broker status": ("labstream broker status --port 9092",),
    "config": ("labstream config show lab.config",),
    "config show": ("labstream config show lab.config       # secrets masked; warns about unknown keys",),
    "upload": (
        "labstream upload run42/ --topic xrd-lab --config lab.config",
        "labstream upload spectrum.csv --topic xrd-lab --chunk-size 1048576 --threads 4",
        "labstream upload FILE -t TOPIC --wait-verified --receipts-trusted-keys trusted-keys/",
    ),
    "watch": (
        "labstream watch /data/xrd --topic xrd-lab --config lab.config",
        "labstream watch --config service.config          # folder and topic from [labstream]",
        "labstream watch DIR -t TOPIC --delete-after-verified 1 --receipts-trusted-keys keys/archive.pub",
    ),
    "download": (
        "labstream download /data/xrd --topic xrd-lab --config lab.config --group archive-1",
        "labstream download OUT -t TOPIC --receipts-key keys/archive",
    ),
    "process": (
        "labstream process summarize.py:Summarize --topic xrd-lab -o out=/data/summary.tsv",
        "labstream process s3 --topic xrd-lab -o bucket=raw-data -o prefix=xrd",
        "labstream process metadata --topic xrd-lab -o extractor=my_extractors.py:xrd_header",
    ),
    "status": (
        "labstream status /data/xrd --topic xrd-lab",
        "labstream status --state S --json               # for scripts",
    ),
    "resend": ("labstream resend run42/scan.raw --state S",),
    "service": (
        "labstream service install --config xrd.config --start",
        "labstream service status --config xrd.config",
    ),
    "service install": ("labstream service install --config xrd.config --start   # name: xrd",),
    "service start": ("labstream service start --config xrd.config",),
    "service stop": ("labstream service stop --config xrd.config",),
    "service restart": ("labstream service restart --config xrd.config",),
    "service remove": ("labstream service remove --config xrd.config",),
    "service status": ("labstream service status --config xrd.config   # running since, pid, counts",),
    "keygen": (
        "labstream keygen lab.key                          # 32 random bytes, base64, mode 0600",
        "labstream keygen --receipts keys/archive          # keys/archive + keys/archive.pub",
    ),
    "demo": ("labstream demo                                    # upload, download, verify a sample",),
    "dashboard": (
        "labstream dashboard -c lab.config                 # http://127.0.0.1:8470/",
        "labstream dashboard -c lab.config --host 0.0.0.0 --token-file /etc/labstream/dashboard.token",
    ),
    "ls": ("labstream ls xrd-lab -c lab.config --since 6h",),
    "get": ("labstream get xrd-lab run42/scan.raw run42/meta.json -o ./picked -c lab.config",),
    "doctor": (
        "labstream doctor -c lab.config -t xrd-lab --role download --folder /data/xrd",
        "labstream doctor -c lab.config -t xrd-lab --role watch --json      # for scripts",
    ),
}


def epilog_of(path: str, environment: tuple[str, ...] = ()) -> str:
    """Examples of the command `path` ("broker start"), then its environment variables;
    `\\b` keeps click from re-wrapping the lines."""
    blocks = []
    if path in EXAMPLES:
        blocks.append("\b\nExamples:\n" + "\n".join(f"  {line}" for line in EXAMPLES[path]))
    if environment:
        blocks.append("\b\nEnvironment:\n" + "\n".join(f"  {line}" for line in environment))
    return "\n\n".join(blocks)
