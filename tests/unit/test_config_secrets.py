"""A config file that fails to parse never has its text echoed: any line may be a secret."""

from __future__ import annotations

from pathlib import Path

import pytest

from labstream.config import load_config, parse_bool
from labstream.errors import ConfigError

SECRET = "s3cret-Pa55"
BROKEN = {
    "no equals sign": f"[cluster]\nbootstrap.servers = a:1\nsasl.password {SECRET}\n",
    "before any section": f"sasl.password = {SECRET}\n[cluster]\nbootstrap.servers = a:1\n",
    "key given twice": f"[cluster]\nsasl.password = {SECRET}\nsasl.password = {SECRET}2\n",
    "section given twice": f"[cluster]\nsasl.password = {SECRET}\n[cluster]\n",
    "colon-less garbage": f"[cluster]\n{SECRET}\n",
}


@pytest.mark.parametrize("text", BROKEN.values(), ids=BROKEN.keys())
def test_a_parse_error_names_the_line_never_its_text(tmp_path: Path, text: str) -> None:
    path = tmp_path / "lab.config"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert SECRET not in message
    assert "line " in message and str(path) in message
    # Nothing chained either: a traceback shown with --debug would print the parser's text.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_a_bad_boolean_under_a_secret_name_is_masked() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_bool(SECRET, "x.config [labstream] token_check")
    assert SECRET not in str(caught.value)
