"""The pseudonym (HMAC) key: one per installation, private, shared by every process; the public one refused."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from features.exceptions import ConfigError
from features.privacy import DEVELOPMENT_KEY, pseudonym_key, pseudonymise
from serving.settings import ServingSettings
from features.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def no_key_in_environment(monkeypatch):
    monkeypatch.delenv("CLIENTELE_PSEUDONYM_KEY", raising=False)
    monkeypatch.delenv("CLIENTELE_DEMO", raising=False)


def test_each_installation_gets_its_own_private_key_that_training_and_serving_share(tmp_path):
    training = Settings(data_dir=tmp_path / "a")
    key = training.pseudonym_key
    path = tmp_path / "a" / "pseudonym.key"
    assert key != DEVELOPMENT_KEY and len(key) >= 32
    assert path.read_text().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    # Another process (the server) on the same data folder reads the same key; another installation has its own.
    assert ServingSettings(data_dir=tmp_path / "a").pseudonym_key == key
    assert Settings(data_dir=tmp_path / "b").pseudonym_key != key
    # The erasure list is no longer reversible with the public key.
    assert pseudonymise("C0001", key) != pseudonymise("C0001", DEVELOPMENT_KEY)


def test_a_configured_key_wins(tmp_path, monkeypatch):
    assert Settings(data_dir=tmp_path, pseudonym_key="from-code").pseudonym_key == "from-code"
    monkeypatch.setenv("CLIENTELE_PSEUDONYM_KEY", "from-env")
    assert ServingSettings(data_dir=tmp_path).pseudonym_key == "from-env"
    assert not (tmp_path / "pseudonym.key").exists()
    monkeypatch.delenv("CLIENTELE_PSEUDONYM_KEY")
    monkeypatch.setenv("PSEUDONYM_KEY", "not-ours")  # only the prefixed variable counts
    assert Settings(data_dir=tmp_path).pseudonym_key != "not-ours"


def test_the_development_key_is_refused_outside_the_demo(tmp_path):
    with pytest.raises(ConfigError, match="development key"):
        pseudonym_key(tmp_path, DEVELOPMENT_KEY)
    assert pseudonym_key(tmp_path, DEVELOPMENT_KEY, demo=True) == DEVELOPMENT_KEY
    (tmp_path / "pseudonym.key").write_text(DEVELOPMENT_KEY + "\n")
    with pytest.raises(ConfigError, match="development key"):
        pseudonym_key(tmp_path)


def test_an_erasure_list_made_with_an_earlier_key_is_never_silently_rekeyed(tmp_path):
    erased = tmp_path / "erasure" / "erased.txt"
    erased.parent.mkdir()
    erased.write_text(pseudonymise("C0001", DEVELOPMENT_KEY) + "\n")
    with pytest.raises(ConfigError, match="earlier pseudonym key"):
        Settings(data_dir=tmp_path).pseudonym_key
    assert not (tmp_path / "pseudonym.key").exists()
    assert Settings(data_dir=tmp_path, pseudonym_key="old-secret").pseudonym_key == "old-secret"


def test_a_key_written_meanwhile_by_another_process_is_kept(tmp_path):
    (tmp_path / "pseudonym.key").write_text("theirs\n")
    assert pseudonym_key(tmp_path) == "theirs"


def test_serve_refuses_the_development_key_in_one_line(tmp_path):
    env = {**os.environ, "CLIENTELE_DATA_DIR": str(tmp_path), "CLIENTELE_PSEUDONYM_KEY": DEVELOPMENT_KEY}
    env.pop("CLIENTELE_DEMO", None)
    result = subprocess.run([sys.executable, "-m", "serving.cli", "serve", "--port", "1"], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2, result.stderr
    assert result.stderr.startswith("error: CLIENTELE_PSEUDONYM_KEY is the public development key")
    assert len(result.stderr.strip().splitlines()) == 1
