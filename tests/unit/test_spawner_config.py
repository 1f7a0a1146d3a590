"""Admin config of the Docker spawner: a bad value is refused naming the option."""

from __future__ import annotations

import pytest
from traitlets import TraitError

from mlhub.spawners.docker import MLHubDockerSpawner


@pytest.mark.parametrize(
    ("option", "value", "named"),
    [
        ("hub_name", "Bad_Name", "hub_name"),
        ("network_pool", "10.0.0.0/33", "network_pool"),
        ("volume_driver", "", "volume_driver"),
        ("volume_driver", "local; rm -rf /", "volume_driver"),
        ("volume_driver_options", {"": "x"}, "volume_driver_options"),
        ("volume_driver_options", {"o=size": "1g"}, "volume_driver_options"),
        ("volume_driver_options", {"o": 5}, "volume_driver_options"),
        ("install_id", "Not-An-Id", "install_id"),
        ("deleted_user_volumes", "archive", "deleted_user_volumes"),
    ],
)
def test_bad_values_are_refused_naming_the_option(option, value, named):
    spawner = MLHubDockerSpawner()
    with pytest.raises(TraitError, match=named):
        setattr(spawner, option, value)


def test_good_values_are_kept():
    spawner = MLHubDockerSpawner()
    spawner.volume_driver = "rexray/ebs:latest"
    spawner.volume_driver_options = {"type": "tmpfs", "device": "tmpfs", "o": "size=2g"}
    assert spawner.volume_driver == "rexray/ebs:latest"
    assert spawner.volume_driver_options["o"] == "size=2g"
