"""SSH on the hub's one port and the WebSocket tunnel: the pure rules (the real thing runs in
tests/test_ssh_shared_port.py)."""

from __future__ import annotations

import pytest

from mlhub.core.settings import SettingsError, read_settings, shared_port_on
from mlhub.hub.port_mux import classify, loopback_alias, parse_address, read_config
from mlhub.services.ssh.targets import Target, tunnel_info
from mlhub.services.ssh.tunnel import bearer_token, may_use_service
from mlhub.services.ssh.tunnel_client import TunnelError, tunnel_url


def settings(tmp_path, **env):
    cert = tmp_path / "c"
    cert.write_text("x")
    ssl = {"SSL_ENABLED": "true", "MLHUB_SSL_CERT": str(cert), "MLHUB_SSL_KEY": str(cert)}
    return read_settings({**(ssl if env.pop("ssl", True) else {}), **env}, default_data_dir=str(tmp_path))


def test_first_bytes_decide():
    assert classify(b"SSH-2.0-OpenSSH_9.2") == "ssh"
    assert classify(b"SSH-") == "ssh"
    assert classify(b"\x16\x03\x01") == "proxy"  # TLS ClientHello
    assert classify(b"GET ") == "proxy"
    assert classify(b"SSX") == "proxy"
    for partial in (b"", b"S", b"SS", b"SSH"):
        assert classify(partial) is None  # wait for more


def test_loopback_aliases_are_stable_distinct_and_keyed():
    key = b"k" * 16
    a = loopback_alias("203.0.113.7", key)
    assert a == loopback_alias("203.0.113.7", key)
    assert a.startswith("127.") and a != "127.0.0.1"
    parts = [int(p) for p in a.split(".")]
    assert 1 <= parts[1] <= 254 and 1 <= parts[3] <= 254
    others = {loopback_alias(f"198.51.100.{i}", key) for i in range(200)}
    assert len(others) == 200  # no collisions among 200 clients
    assert loopback_alias("203.0.113.7", b"x" * 16) != a  # another key, another mapping


def test_mux_config_names_each_bad_variable():
    with pytest.raises(ValueError) as exc:
        read_config({"MLHUB_MUX_PORT": "x", "MLHUB_MUX_HTTPS_UPSTREAM": "nope"})
    text = str(exc.value)
    assert (
        "MLHUB_MUX_PORT" in text and "MLHUB_MUX_HTTPS_UPSTREAM" in text and "MLHUB_MUX_SSH_UPSTREAM" in text
    )
    assert parse_address("[::1]:22", "x") == ("::1", 22)


def test_shared_port_is_on_by_default_with_ssl_only(tmp_path):
    assert shared_port_on(settings(tmp_path))
    assert not shared_port_on(settings(tmp_path, ssl=False))
    assert shared_port_on(settings(tmp_path, ssl=False, MLHUB_SSH_SHARED_PORT="true"))
    assert not shared_port_on(settings(tmp_path, MLHUB_SSH_SHARED_PORT="false"))
    assert not shared_port_on(settings(tmp_path, START_SSH="false"))
    assert not shared_port_on(settings(tmp_path, MLHUB_PROXY_API_URL="http://proxy:8001"))


@pytest.mark.parametrize(
    "env, variable",
    [
        ({"MLHUB_SSH_SHARED_PORT": "maybe"}, "MLHUB_SSH_SHARED_PORT"),
        ({"MLHUB_SSH_SHARED_PORT": "true", "START_SSH": "false"}, "MLHUB_SSH_SHARED_PORT"),
        ({"MLHUB_SSH_SHARED_PORT": "true", "START_CHP": "true"}, "MLHUB_SSH_SHARED_PORT"),
        ({"MLHUB_SSH_SHARED_PORT": "true", "MLHUB_PROXY_INTERNAL_PORT": "8080"}, "MLHUB_PROXY_INTERNAL_PORT"),
        ({"MLHUB_PROXY_INTERNAL_PORT": "0"}, "MLHUB_PROXY_INTERNAL_PORT"),
        ({"MLHUB_PORT_MUX_MAX_CONNECTIONS": "0"}, "MLHUB_PORT_MUX_MAX_CONNECTIONS"),
    ],
)
def test_bad_shared_port_settings_name_the_variable(tmp_path, env, variable):
    with pytest.raises(SettingsError) as exc:
        settings(tmp_path, **env)
    assert variable in str(exc.value)


def test_tunnel_tokens_come_from_the_authorization_header_only():
    assert bearer_token("token abc") == "abc"
    assert bearer_token("Bearer abc") == "abc"
    assert bearer_token("Basic YWxpY2U6eA==") == ""
    assert bearer_token("") == ""
    user = {"kind": "user", "name": "alice", "scopes": ["access:services!service=ssh"]}
    assert may_use_service(user, "ssh")
    assert not may_use_service({**user, "scopes": ["read:users"]}, "ssh")
    assert not may_use_service({**user, "kind": "service"}, "ssh")


def test_tunnel_url_and_commands():
    assert tunnel_url("https://hub.example.org") == "wss://hub.example.org/services/ssh/tunnel"
    assert tunnel_url("http://localhost:8000/") == "ws://localhost:8000/services/ssh/tunnel"
    assert tunnel_url("https://h/services/ssh2/tunnel") == "wss://h/services/ssh2/tunnel"
    with pytest.raises(TunnelError, match="url"):
        tunnel_url("hub.example.org")
    info = tunnel_info(Target("alice", "gpu"), "https://hub.example.org", "/services/ssh/")
    assert info["tunnel_command"] == (
        "ssh -o ProxyCommand='mlhub-ssh-tunnel https://hub.example.org/services/ssh/tunnel' "
        "alice,gpu@mlhub-alice-gpu-tunnel"
    )
    assert (
        "ProxyCommand mlhub-ssh-tunnel https://hub.example.org/services/ssh/tunnel" in info["tunnel_config"]
    )


def test_pip_installs_the_tunnel_client_as_a_console_script():
    import importlib
    from pathlib import Path

    import tomllib

    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["mlhub-ssh-tunnel"].partition(":")
    assert callable(getattr(importlib.import_module(module), function))
