"""The ownership rules (pure) and the install id file; the engine-level behaviour is in
tests/test_ownership.py."""

from __future__ import annotations

import os
import stat
from datetime import datetime
from types import SimpleNamespace

import pytest

from mlhub.core.ownership import Verdict, account_created, judge, parse_time, same_account
from mlhub.core.settings import SettingsError, read_settings
from mlhub.hub.install import InstallError, read_or_create_install_id

BASE = {"mlhub.origin": "hub1", "mlhub.user": "alice", "mlhub.server_name": ""}


def verdict(labels, created=2000, object_created=None, install="aaaa1111"):
    return judge(labels, "hub1", "alice", install, created, object_created, "")[0]


def test_judge():
    assert verdict({**BASE, "mlhub.user_created": "2000"}) is Verdict.MINE
    assert verdict({**BASE, "mlhub.user_created": "1999"}) is Verdict.MINE  # a database's rounding
    assert verdict({**BASE, "mlhub.user_created": "1000"}) is Verdict.EARLIER_ACCOUNT
    assert verdict({**BASE, "mlhub.user_created": "x"}) is Verdict.EARLIER_ACCOUNT
    assert verdict({**BASE, "mlhub.install": "bbbb2222", "mlhub.user_created": "2000"}) is Verdict.FOREIGN
    assert verdict({**BASE, "mlhub.origin": "hub2"}) is Verdict.FOREIGN
    assert verdict({**BASE, "mlhub.server_name": "gpu"}) is Verdict.FOREIGN
    assert verdict(None) is Verdict.FOREIGN
    # made before account labels: the account's own if made after the account, else an earlier one's
    assert verdict(BASE, object_created=2500.0) is Verdict.MINE
    assert verdict(BASE, object_created=1500.0) is Verdict.EARLIER_ACCOUNT
    assert verdict(BASE, object_created=None) is Verdict.MINE
    assert verdict(BASE, created=None, object_created=1.0) is Verdict.MINE


def test_times():
    assert parse_time("2026-11-30T15:20:00Z") == parse_time("2026-11-30T16:20:00+01:00") == 1796052000.0
    assert parse_time("2026-11-30T15:20:00.123456789Z") == pytest.approx(1796052000.123456)
    assert (
        parse_time("0001-01-01T00:00:00Z") is None and parse_time("") is None and parse_time("junk") is None
    )
    assert account_created(SimpleNamespace(created=datetime(2026, 11, 30, 15, 20, 0, 700000))) == 1796052000
    assert account_created(SimpleNamespace()) is None
    assert same_account("1796052001", 1796052000) and not same_account("1796051000", 1796052000)


def test_install_id_is_generated_once_mode_600(tmp_path):
    first = read_or_create_install_id(str(tmp_path))
    assert len(first) == 16 and read_or_create_install_id(str(tmp_path)) == first
    assert stat.S_IMODE(os.stat(tmp_path / "install-id").st_mode) == 0o600
    (tmp_path / "install-id").write_text("Not An Id!\n")
    with pytest.raises(InstallError, match="install-id: must hold 8-40 lowercase letters or digits"):
        read_or_create_install_id(str(tmp_path))


def test_ownership_settings_are_validated(tmp_path):
    settings = read_settings(
        {"MLHUB_DELETED_USER_VOLUMES": "keep", "MLHUB_INSTALL_ID": "abcd1234"}, str(tmp_path)
    )
    assert settings.deleted_user_volumes == "keep" and settings.install_id == "abcd1234"
    assert read_settings({}, str(tmp_path)).deleted_user_volumes == "remove"
    with pytest.raises(SettingsError) as info:
        read_settings({"MLHUB_DELETED_USER_VOLUMES": "archive", "MLHUB_INSTALL_ID": "x"}, str(tmp_path))
    assert "MLHUB_DELETED_USER_VOLUMES: must be remove or keep" in str(info.value)
    assert "MLHUB_INSTALL_ID: must be 8-40 lowercase letters or digits" in str(info.value)
