from pathlib import Path

import pytest

from openstack_rca.config import RCAConfig, load
from openstack_rca.errors import ConfigError


def test_defaults_file_env_precedence(tmp_path):
    cfg_file = tmp_path / "config.toml"
    cfg_file.write_text("[parse]\nworkers = 3\nmax_line_bytes = 2048\n")
    cfg = load(env={"RCA_HOME": str(tmp_path), "RCA_PARSE_WORKERS": "1"})
    assert cfg.home == tmp_path
    assert cfg.parse.workers == 1            # env beats file
    assert cfg.parse.max_line_bytes == 2048  # file beats default
    assert cfg.cache.enabled is True         # default
    assert cfg.parsed_cache_dir == tmp_path / "cache" / "parsed"


def test_default_home_is_under_user_home():
    cfg = load(env={})
    assert cfg.home == Path("~/.openstack-rca").expanduser()
    assert isinstance(cfg, RCAConfig)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"RCA_PARSE_WORKERS": "many"}, "RCA_PARSE_WORKERS"),
        ({"RCA_PARSE_WORKERS": "-1"}, "parse.workers must be >= 0"),
        ({"RCA_CACHE_ENABLED": "maybe"}, "RCA_CACHE_ENABLED"),
    ],
)
def test_bad_values_say_which_and_why(tmp_path, env, message):
    with pytest.raises(ConfigError, match=message):
        load(env={"RCA_HOME": str(tmp_path), **env})


def test_unknown_keys_and_bad_toml_are_rejected(tmp_path):
    (tmp_path / "config.toml").write_text("[parse]\nworkerz = 2\n")
    with pytest.raises(ConfigError, match="workerz"):
        load(env={"RCA_HOME": str(tmp_path)})
    (tmp_path / "config.toml").write_text("[parse\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load(env={"RCA_HOME": str(tmp_path)})
    with pytest.raises(ConfigError, match="config file not found"):
        load(env={"RCA_HOME": str(tmp_path), "RCA_CONFIG": str(tmp_path / "nope.toml")})
