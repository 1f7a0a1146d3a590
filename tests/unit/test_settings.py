"""Environment variables: validated once, errors name the variable; a bad one stops the hub."""

from __future__ import annotations

import pytest

from devtools.hubprocess import REPO
from mlhub.core.settings import SettingsError, activity_interval, read_settings


def test_defaults():
    settings = read_settings({}, default_data_dir="/data")
    assert settings.hub_name == "mlhub" and settings.port == 8080
    assert settings.db_url == "sqlite:////data/jupyterhub.sqlite"
    assert settings.workspace_image == "mlhub/workspace:latest"
    assert settings.self_service is True and settings.max_days_to_live is None


def test_values_are_parsed():
    settings = read_settings(
        {
            "HUB_NAME": "dev-1",
            "MLHUB_PORT": "9000",
            "MLHUB_MAX_MEM_LIMIT": "8g",
            "MLHUB_DEFAULT_CPU_LIMIT": "0.5",
            "MLHUB_ALLOWED_IMAGES": "a:1, b:2",
            "MLHUB_SELF_SERVICE": "false",
            "MLHUB_DB_URL": "postgresql://u@localhost/db",
        },
        default_data_dir="/data",
    )
    assert settings.hub_name == "dev-1" and settings.port == 9000
    assert settings.max_mem_limit == 8 * 1024**3 and settings.default_cpu_limit == 0.5
    assert settings.allowed_images == ("a:1", "b:2") and settings.self_service is False
    assert settings.db_url == "postgresql://u@localhost/db"


@pytest.mark.parametrize(
    "name, value, fragment",
    [
        ("HUB_NAME", "My_Hub", "lowercase"),
        ("HUB_NAME", "waytoolonghubname", "1-12"),
        ("MLHUB_PORT", "99999", "between 1 and 65535"),
        ("MLHUB_PORT", "http", "whole number"),
        ("MLHUB_MAX_CPU_LIMIT", "-2", "greater than 0"),
        ("MLHUB_MAX_MEM_LIMIT", "lots", "512m"),
        ("MLHUB_MAX_GPUS", "-1", ">= 0"),
        ("MLHUB_MAX_DAYS_TO_LIVE", "0", "> 0"),
        ("MLHUB_SELF_SERVICE", "perhaps", "true or false"),
        ("MLHUB_ADMIN_PASSWORD", "short", "at least 8 characters"),
        ("MLHUB_USER_CONFIG", "/nonexistent.py", "existing file"),
        ("MLHUB_SSH_PORT", "0", "between 1 and 65535"),
        ("MLHUB_SSH_TOKEN_AUTH", "maybe", "true or false"),
        ("MLHUB_NAMESPACE", "My_NS", "Kubernetes name"),
        ("MLHUB_HUB_CONNECT_HOST", "http://hub:8081", "host name or IP"),
        ("MLHUB_PROXY_API_URL", "proxy:8001", "http:// or https://"),
        ("MLHUB_HUB_URL", "ftp://hub", "http:// or https://"),
        ("MLHUB_VOLUME_SIZE", "ten gigs", "Kubernetes quantity"),
        ("MLHUB_GPU_NODE_SELECTOR", '{"a": 1}', "JSON object of strings"),
        ("MLHUB_GPU_NODE_SELECTOR", "accelerator=nvidia", "JSON object of strings"),
        ("MLHUB_GPU_TOLERATIONS", '[{"key": "x", "color": "red"}]', "JSON list of tolerations"),
        ("MLHUB_PUBLIC_URL", "hub.example.org", "http:// or https://"),
        ("MLHUB_PUBLIC_URL", "https://hub.example.org/jupyter", "no path"),
        ("MLHUB_PUBLIC_URL", "https://hub.example.org:99999", "http:// or https://"),
        ("MLHUB_PUBLIC_URL", "https://10.0.0.5", "host name with wildcard DNS"),
        ("MLHUB_USER_SUBDOMAINS", "sometimes", "true or false"),
        ("MLHUB_CULL_IDLE_SECONDS", "5", "0 (off) or a whole number of seconds >= 10"),
        ("MLHUB_CULL_IDLE_SECONDS", "-1", "0 (off) or a whole number of seconds >= 10"),
        ("MLHUB_CULL_IDLE_SECONDS", "12h", "0 (off) or a whole number of seconds >= 10"),
    ],
)
def test_bad_values_name_the_variable(name, value, fragment):
    with pytest.raises(SettingsError) as info:
        read_settings({name: value}, default_data_dir="/data")
    assert name in info.value.errors and fragment in info.value.errors[name]


def test_public_url_defaults_to_localhost_so_per_user_origins_work_without_dns():
    assert read_settings({}, default_data_dir="/d").public_url == "http://localhost:8080"
    assert (
        read_settings(
            {
                "MLHUB_PORT": "443",
                "SSL_ENABLED": "true",
                "MLHUB_SSL_CERT": __file__,
                "MLHUB_SSL_KEY": __file__,
            },
            default_data_dir="/d",
        ).public_url
        == "https://localhost"
    )
    settings = read_settings({"MLHUB_PUBLIC_URL": "https://hub.example.org/"}, default_data_dir="/d")
    assert settings.public_url == "https://hub.example.org" and settings.public_host == "hub.example.org"
    assert settings.user_subdomains is True and settings.public_https is True
    # an IP address is fine once per-user origins are off
    off = read_settings(
        {"MLHUB_PUBLIC_URL": "http://10.0.0.5:8080", "MLHUB_USER_SUBDOMAINS": "false"}, default_data_dir="/d"
    )
    assert off.public_url == "http://10.0.0.5:8080" and off.user_subdomains is False


def test_idle_culling_is_on_by_default_and_0_turns_it_off():
    assert read_settings({}, default_data_dir="/d").cull_idle_seconds == 86400
    assert read_settings({"MLHUB_CULL_IDLE_SECONDS": "0"}, default_data_dir="/d").cull_idle_seconds == 0
    assert read_settings({"MLHUB_CULL_IDLE_SECONDS": "3600"}, default_data_dir="/d").cull_idle_seconds == 3600
    # activity is reported every quarter of the timeout, at most every 300 s (JupyterHub's default)
    assert [activity_interval(t) for t in (0, 10, 30, 3600, 86400)] == [300, 2, 7, 300, 300]


def test_default_above_max_is_refused():
    with pytest.raises(SettingsError, match="MLHUB_DEFAULT_CPU_LIMIT"):
        read_settings({"MLHUB_DEFAULT_CPU_LIMIT": "4", "MLHUB_MAX_CPU_LIMIT": "2"}, default_data_dir="/d")


def test_login_limits():
    settings = read_settings({}, default_data_dir="/data")
    assert (settings.login_max_failures, settings.login_lockout_seconds, settings.login_rate_limit) == (
        5,
        600,
        60,
    )
    settings = read_settings(
        {"MLHUB_LOGIN_MAX_FAILURES": "0", "MLHUB_LOGIN_LOCKOUT_SECONDS": "30", "MLHUB_LOGIN_RATE_LIMIT": "0"},
        default_data_dir="/d",
    )
    assert (settings.login_max_failures, settings.login_lockout_seconds, settings.login_rate_limit) == (
        0,
        30,
        0,
    )
    with pytest.raises(SettingsError) as info:
        read_settings(
            {
                "MLHUB_LOGIN_MAX_FAILURES": "-1",
                "MLHUB_LOGIN_LOCKOUT_SECONDS": "0",
                "MLHUB_LOGIN_RATE_LIMIT": "many",
            },
            default_data_dir="/d",
        )
    text = str(info.value)
    assert "MLHUB_LOGIN_MAX_FAILURES: must be between 0 and 1000" in text
    assert "MLHUB_LOGIN_LOCKOUT_SECONDS: must be between 1 and 86400" in text
    assert "MLHUB_LOGIN_RATE_LIMIT: must be a whole number" in text


def test_every_variable_is_in_the_readme():
    readme = (REPO / "README.md").read_text()
    from mlhub.core.settings import VARIABLES

    assert [name for name in VARIABLES if f"`{name}`" not in readme] == []


def test_ml_hubs_variables_are_named_not_silently_ignored():
    from mlhub.core.settings import ML_HUB_ONLY_VARIABLES, VARIABLES, ml_hub_leftovers

    assert ml_hub_leftovers({"HUB_NAME": "lab"}) == []
    said = ml_hub_leftovers({"START_NGINX": "true", "SSH_TARGET_LABELS": "x", "HUB_NAME": "lab"})
    assert [line.split()[0] for line in said] == ["START_NGINX", "SSH_TARGET_LABELS"]
    assert all("ignored by MLHub" in line for line in said)
    assert not set(ML_HUB_ONLY_VARIABLES) & set(VARIABLES)  # none of them is read after all
