"""Pure rules of the fleet app: what the export masks, what a status looks like on the map."""

from __future__ import annotations

from fleet.selectors import HEALTH_WORDS, _app_health, _device_health
from fleet.services import _public_config, _shown
from homelab.core.masking import MASK
from marketplace.models import DeploymentStatus


def test_every_setting_whose_name_or_mark_says_secret_is_masked_again():
    config = {
        "ports": {"web": "8080"},
        "env": {
            "DB_PASSWORD": "hunter2",
            "API_TOKEN": "t",
            "MINE": "x",
            "TITLE": "Home",
            "EMPTY_KEY": "",
        },
        "secret_env": ["MINE"],
        "unknown": "dropped",
    }
    assert _public_config(config) == {
        "ports": {"web": 8080},
        "env": {
            "DB_PASSWORD": MASK,
            "API_TOKEN": MASK,
            "MINE": MASK,
            "TITLE": "Home",
            "EMPTY_KEY": "",
        },
        "secret_env": ["MINE"],
    }


def test_a_config_that_is_not_a_mapping_exports_as_nothing():
    assert _public_config(None) == {} and _public_config(["x"]) == {}


def test_a_value_repeated_in_an_answer_is_short_and_on_one_line():
    assert _shown("pi\nrm -rf /;`id`") == "pi?rm -rf /??id?"
    assert _shown("x" * 100) == "x" * 40 + "..."
    assert _shown([[1] * 10] * 10) == "a list"
    assert _shown(None) == "a NoneType"


def test_every_status_has_a_colour_the_legend_names():
    for status in DeploymentStatus.values:
        assert _app_health(status) in HEALTH_WORDS
    assert _app_health("running") == "ok" and _app_health("stopped") == "stopped"
    assert _app_health("health_check") == "busy" and _app_health("failed") == "down"
    assert _device_health("online") == "ok" and _device_health("offline") == "down"
    assert _device_health("host_key_changed") == "trouble" and _device_health("pending") == "busy"
