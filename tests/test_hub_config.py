"""The shipped jupyterhub_config.py loaded by the real jupyterhub command."""

from __future__ import annotations

import subprocess
import sys

from devtools.hubprocess import REPO


def test_hub_refuses_to_start_with_a_bad_variable(tmp_path):
    """The real config file, loaded by the real jupyterhub command."""
    jupyterhub = str(__import__("pathlib").Path(sys.executable).with_name("jupyterhub"))
    result = subprocess.run(
        [jupyterhub, "-f", str(REPO / "jupyterhub_config.py")],
        env={
            "PATH": "/usr/bin:/bin",
            "HUB_NAME": "Bad_Name",
            "MLHUB_PORT": "0",
            "MLHUB_DATA_DIR": str(tmp_path),
        },
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "HUB_NAME: must be 1-12 lowercase letters" in output
    assert "MLHUB_PORT: must be between 1 and 65535" in output
    assert not (tmp_path / "jupyterhub.sqlite").exists()


def test_ml_hubs_leftover_variables_are_named_at_start(tmp_path):
    """START_NGINX and friends: ML Hub read them, MLHub does not; the start log says so."""
    from tests.support.helm_hub import hub_config_from_chart

    result = hub_config_from_chart(
        {"hub": {"extraEnv": {"START_NGINX": "true", "DEFAULT_WORKSPACE_PORT": "8091"}}}, tmp_path
    )
    assert result.returncode == 0, result.stderr[-3000:]
    output = result.stdout + result.stderr
    assert "[mlhub] WARNING: START_NGINX is ML Hub's and ignored by MLHub" in output
    assert "[mlhub] WARNING: DEFAULT_WORKSPACE_PORT is ML Hub's and ignored by MLHub" in output


NO_SLOW_GRAMMAR = (
    "import importlib.util as u; import sys; sys.exit(u.find_spec('rfc3987_syntax') is not None)"
)


def test_the_hub_imports_no_grammar_built_at_import_time(docker_client) -> None:
    """rfc3987-syntax (jsonschema[format-nongpl], through jupyter-events) builds its grammars
    when imported, about 3 s of every hub start (benchmarks/results/hub-start/): the set-up's
    venv and the hub image leave it out (docs/decisions/workspace-start-time.md)."""
    assert subprocess.run([sys.executable, "-c", NO_SLOW_GRAMMAR], check=False).returncode == 0, (
        f"{sys.executable} has rfc3987_syntax"
    )
    docker_client.containers.run(
        "mlhub/mlhub:latest", ["-c", NO_SLOW_GRAMMAR], entrypoint="/opt/mlhub/bin/python", remove=True
    )
