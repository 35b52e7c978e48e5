"""`labstream watch DIR -t T &` from a terminal: the watcher runs on in the background and
sends, instead of stopping on SIGTTIN (`Stopped (tty input)`) by reading its console keys."""

from __future__ import annotations

import os
import pty
import subprocess
import sys
import time
from pathlib import Path

from .watchproc import wait_for

# A session leader owning the pty as its controlling terminal, in the foreground like a shell,
# starting the watcher as a background job (its own process group), stdin on the terminal.
SHELL = """
import os, subprocess, sys
os.setsid()
tty = os.open(sys.argv[1], os.O_RDWR)  # first terminal a session leader opens: controlling
os.tcsetpgrp(tty, os.getpgrp())
job = subprocess.Popen(sys.argv[2:], stdin=tty, stdout=subprocess.DEVNULL, process_group=0)
print(job.pid, flush=True)
sys.exit(job.wait())
"""


def process_state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


def test_watcher_started_in_the_background_of_a_terminal_keeps_sending(
    tmp_path: Path, config_file: Path, topic: str
) -> None:
    root = tmp_path / "instrument"
    root.mkdir()
    state = tmp_path / "state"
    log = tmp_path / "watch.log"
    primary, secondary = pty.openpty()
    watch = [sys.executable, "-m", "labstream", "watch", str(root)]
    watch += ["--config", str(config_file), "--topic", topic, "--state", str(state)]
    watch += ["--settle-seconds", "1", "--update-seconds", "-1"]
    with open(log, "wb") as err:  # the watcher's log, inherited through the shell
        shell = subprocess.Popen(
            [sys.executable, "-c", SHELL, os.ttyname(secondary), *watch],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    pid = 0
    try:
        assert shell.stdout is not None
        pid = int(shell.stdout.readline())
        wait_for(lambda: "watching folder=" in log.read_text() or process_state(pid) == "T", timeout=60)
        (root / "a.txt").write_bytes(b"sent from the background")
        time.sleep(2)
        assert process_state(pid) != "T", "the watcher stopped on reading its terminal"
        wait_for(lambda: "file sent file=a.txt" in log.read_text(), timeout=60)
        assert process_state(pid) != "T"
        os.kill(pid, 15)
        assert shell.wait(60) == 0
    finally:
        if shell.poll() is None:
            if pid:
                os.killpg(pid, 9)
            shell.kill()
            shell.wait(30)
        if shell.stdout is not None:
            shell.stdout.close()
        os.close(primary)
        os.close(secondary)
