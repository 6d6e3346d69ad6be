"""Loading lifeboat.toml: interpolation, validation and one-line errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from lifeboat.config.load import CONFIG_ENV, DEFAULT_CONFIG, load_config, resolve_config_path
from lifeboat.config.model import LifeboatConfig
from lifeboat.errors import EXIT_USAGE, ConfigError, LifeboatError
from lifeboat.pipeline.crypto import generate_age_identity
from tests.unit.config.sources import pg_source

_, AGE_PUBLIC = generate_age_identity()
_, OTHER_PUBLIC = generate_age_identity()

MINIMAL = f"""\
[repositories.local]
url = "file:///var/backups/lifeboat"

[encryption]
age_recipients = ["{AGE_PUBLIC}"]
age_identity_file = "/etc/lifeboat/age.key"

[sources.wms]
type = "postgres"
dsn = "postgresql://backup@db.internal:5432/wms"
"""


def write(tmp_path: Path, text: str, name: str = "lifeboat.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def load_error(tmp_path: Path, text: str) -> ConfigError:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    message = str(caught.value)
    assert message.startswith(f"{path}: "), message
    assert "\n" not in message
    return caught.value


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("LB_DSN", "LB_URL", "LB_AGE", "LB_UNSET", "LB_LEVEL", CONFIG_ENV):
        monkeypatch.delenv(name, raising=False)


# --- valid ---------------------------------------------------------------------------------


def test_minimal_config_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    assert isinstance(config, LifeboatConfig)
    assert list(config.repositories) == ["local"]
    assert config.repositories["local"].url == "file:///var/backups/lifeboat"
    assert config.encryption.age_recipients == [AGE_PUBLIC]
    assert config.encryption.age_identity_file == Path("/etc/lifeboat/age.key")
    assert config.encryption.gpg_recipients == []
    assert config.encryption.method == "age"
    source = config.sources["wms"]
    assert source.type == "postgres"
    assert source.dsn == "postgresql://backup@db.internal:5432/wms"
    assert source.repositories is None
    assert source.password_file is None
    # defaults
    assert config.compression.level == 1
    assert config.compression.threads == 0
    assert config.logging.format == "auto"
    assert config.logging.level == "info"


def test_config_is_frozen(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL))
    with pytest.raises(ValueError):
        config.compression.level = 9


def test_full_config_loads(tmp_path: Path) -> None:
    text = MINIMAL + (
        '\n[repositories.offsite]\nurl = "/mnt/offsite"\n'
        "\n[compression]\nlevel = 19\nthreads = 4\n"
        '\n[logging]\nformat = "json"\nlevel = "debug"\n'
        '\n[sources.crm]\ndsn = "host=db dbname=crm"\nrepositories = ["offsite"]\n'
        'password_file = "/run/secrets/crm"\npg_bin_dir = "/usr/lib/postgresql/16/bin"\n'
    )
    config = load_config(write(tmp_path, text))
    assert list(config.repositories) == ["local", "offsite"]
    assert config.compression.level == 19
    assert config.compression.threads == 4
    assert config.logging.format == "json"
    assert config.sources["crm"].type == "postgres"
    assert config.sources["crm"].repositories == ["offsite"]
    assert config.sources["crm"].password_file == Path("/run/secrets/crm")
    assert config.sources["crm"].pg_bin_dir == Path("/usr/lib/postgresql/16/bin")


def test_gpg_only_config_loads(tmp_path: Path) -> None:
    text = (
        '[repositories.local]\nurl = "/srv/backups"\n'
        '[encryption]\ngpg_recipients = ["backup@example.com"]\n'
        'gpg_homedir = "/etc/lifeboat/gnupg"\n'
    )
    config = load_config(write(tmp_path, text))
    assert config.encryption.method == "gpg"
    assert config.sources == {}


# --- interpolation -------------------------------------------------------------------------


def test_env_interpolation(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_DSN", "postgresql://backup@db.example:6432/wms")
    monkeypatch.setenv("LB_AGE", AGE_PUBLIC)
    monkeypatch.setenv("LB_URL", "/srv/repo")
    text = (
        MINIMAL.replace("postgresql://backup@db.internal:5432/wms", "${LB_DSN}")
        .replace(f'["{AGE_PUBLIC}"]', '["${LB_AGE}"]')
        .replace("file:///var/backups/lifeboat", "file://${LB_URL}/main")
    )
    config = load_config(write(tmp_path, text))
    assert pg_source(config, "wms").dsn == "postgresql://backup@db.example:6432/wms"
    assert config.encryption.age_recipients == [AGE_PUBLIC]
    assert config.repositories["local"].url == "file:///srv/repo/main"


def test_env_default_used_when_unset(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "postgresql://backup@db.internal:5432/wms",
        "postgresql://backup@${LB_UNSET:-fallback.internal}:5432/wms",
    )
    config = load_config(write(tmp_path, text))
    assert pg_source(config, "wms").dsn == "postgresql://backup@fallback.internal:5432/wms"


def test_env_default_ignored_when_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_DSN", "host=from-env")
    text = MINIMAL.replace("postgresql://backup@db.internal:5432/wms", "${LB_DSN:-host=default}")
    assert pg_source(load_config(write(tmp_path, text)), "wms").dsn == "host=from-env"


def test_env_set_but_empty_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LB_DSN", "")
    text = MINIMAL.replace(
        "postgresql://backup@db.internal:5432/wms", "host=db${LB_DSN:-.default} dbname=wms"
    )
    assert pg_source(load_config(write(tmp_path, text)), "wms").dsn == "host=db dbname=wms"


def test_env_empty_default(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        "postgresql://backup@db.internal:5432/wms", "host=db${LB_UNSET:-} dbname=wms"
    )
    assert pg_source(load_config(write(tmp_path, text)), "wms").dsn == "host=db dbname=wms"


def test_env_value_is_not_interpolated_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("LB_DSN", "host=${LB_UNSET}")
    text = MINIMAL.replace("postgresql://backup@db.internal:5432/wms", "${LB_DSN}")
    assert pg_source(load_config(write(tmp_path, text)), "wms").dsn == "host=${LB_UNSET}"


def test_unset_variable_names_file_and_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("postgresql://backup@db.internal:5432/wms", "${LB_UNSET}")
    error = load_error(tmp_path, text)
    assert "sources.wms.dsn" in error.message
    assert "LB_UNSET" in error.message
    assert "not set" in error.message
    assert error.exit_code == EXIT_USAGE


def test_unset_variable_in_list_names_index(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'["{AGE_PUBLIC}"]', f'["{AGE_PUBLIC}", "${{LB_UNSET}}"]')
    error = load_error(tmp_path, text)
    assert "encryption.age_recipients[1]" in error.message
    assert "LB_UNSET" in error.message


def test_interpolation_leaves_non_strings_alone(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + "\n[compression]\nlevel = 7\n"))
    assert config.compression.level == 7


# --- errors --------------------------------------------------------------------------------


def test_unknown_key(tmp_path: Path) -> None:
    text = MINIMAL.replace("[encryption]\n", '[encryption]\nfoo = "bar"\n')
    error = load_error(tmp_path, text)
    assert f"{tmp_path / 'lifeboat.toml'}" in error.message
    assert "encryption.foo: unknown key" in error.message
    assert error.exit_code == 2


def test_unknown_top_level_section(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "\n[retension]\nkeep_last = 3\n")
    assert "retension: unknown key" in error.message


@pytest.mark.parametrize(
    ("table", "message"),
    [
        ("keep = 3", "retention.keep: unknown key"),
        ('keep_within = "2 days"', "not a duration"),
        ('safety_backups_expire_after = "a week"', "not a duration"),
        ('timezone = "Mars/Olympus"', "unknown time zone"),
        ("keep_daily = -1", "retention.keep_daily"),
    ],
)
def test_bad_retention_settings(tmp_path: Path, table: str, message: str) -> None:
    assert message in load_error(tmp_path, MINIMAL + f"\n[retention]\n{table}\n").message


def test_unknown_key_in_source(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + 'pasword = "typo"\n')
    assert "sources.wms.pasword: unknown key" in error.message


def test_wrong_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '\n[compression]\nlevel = "high"\n')
    assert "compression.level" in error.message
    assert "integer" in error.message


def test_out_of_range(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "\n[compression]\nlevel = 22\n")
    assert "compression.level" in error.message
    assert "19" in error.message


def test_wrong_type_list(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'["{AGE_PUBLIC}"]', f'"{AGE_PUBLIC}"')
    error = load_error(tmp_path, text)
    assert "encryption.age_recipients" in error.message


def test_invalid_choice(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + '\n[logging]\nformat = "xml"\n')
    assert "logging.format" in error.message


def test_missing_required_key(tmp_path: Path) -> None:
    text = MINIMAL.replace('dsn = "postgresql://backup@db.internal:5432/wms"\n', "")
    error = load_error(tmp_path, text)
    assert "sources.wms.dsn: missing required key" in error.message


def test_missing_repositories(tmp_path: Path) -> None:
    text = MINIMAL.replace('[repositories.local]\nurl = "file:///var/backups/lifeboat"\n', "")
    error = load_error(tmp_path, text)
    assert "repositories: missing required key" in error.message


def test_empty_repositories(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '[repositories.local]\nurl = "file:///var/backups/lifeboat"\n', "repositories = {}\n"
    )
    error = load_error(tmp_path, text)
    assert "at least one repository" in error.message


def test_empty_repository_url(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL.replace("file:///var/backups/lifeboat", "  "))
    assert "repositories.local.url" in error.message
    assert "must not be empty" in error.message


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert "not found" in str(caught.value)
    assert caught.value.exit_code == 2


def test_unreadable_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path)  # a directory
    assert str(caught.value).startswith(f"{tmp_path}: cannot read config file")


def test_invalid_toml(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + "\n[compression\nlevel = 3\n")
    assert "not valid TOML" in error.message


def test_not_utf8(tmp_path: Path) -> None:
    path = tmp_path / "lifeboat.toml"
    path.write_bytes(MINIMAL.encode().replace(b"/var/backups", b"/var/\xff\xfebackups"))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}: ")
    assert caught.value.exit_code == 2


def test_both_age_and_gpg(tmp_path: Path) -> None:
    text = MINIMAL.replace("[encryption]\n", '[encryption]\ngpg_recipients = ["ops@example.com"]\n')
    error = load_error(tmp_path, text)
    assert "encryption" in error.message
    assert "not both" in error.message


def test_no_recipients(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'age_recipients = ["{AGE_PUBLIC}"]\n', "")
    error = load_error(tmp_path, text)
    assert "encryption" in error.message
    assert "always encrypted" in error.message


def test_empty_recipient_lists(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'["{AGE_PUBLIC}"]', "[]\ngpg_recipients = []")
    error = load_error(tmp_path, text)
    assert "age_recipients or gpg_recipients is required" in error.message


def test_missing_encryption_section(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        f'[encryption]\nage_recipients = ["{AGE_PUBLIC}"]\n'
        'age_identity_file = "/etc/lifeboat/age.key"\n',
        "",
    )
    error = load_error(tmp_path, text)
    assert "encryption: missing required key" in error.message


def test_non_age_recipient(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'["{AGE_PUBLIC}"]', f'["{AGE_PUBLIC}", "ssh-ed25519 AAAAC3Nz"]')
    error = load_error(tmp_path, text)
    assert "encryption.age_recipients" in error.message
    assert "'ssh-ed25519 AAAAC3Nz' is not an age public key" in error.message


def test_source_naming_unknown_repository(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL + 'repositories = ["offsite"]\n')
    assert "sources.wms.repositories names unknown repository 'offsite'" in error.message


def test_source_naming_known_repository(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, MINIMAL + 'repositories = ["local"]\n'))
    assert config.sources["wms"].repositories == ["local"]


def test_unknown_source_type(tmp_path: Path) -> None:
    error = load_error(tmp_path, MINIMAL.replace('type = "postgres"', 'type = "mysql"'))
    assert "sources.wms.type" in error.message


def test_several_errors_in_one_line(tmp_path: Path) -> None:
    text = MINIMAL + '\n[compression]\nlevel = 0\nspeed = "fast"\n'
    error = load_error(tmp_path, text)
    assert "compression.level" in error.message
    assert "compression.speed: unknown key" in error.message
    assert "; " in error.message


def test_config_error_exit_code() -> None:
    assert ConfigError.exit_code == 2 == EXIT_USAGE
    assert ConfigError("x").exit_code == 2
    assert isinstance(ConfigError("x"), LifeboatError)
    assert str(ConfigError("one line")) == "one line"


def test_second_recipient_is_kept(tmp_path: Path) -> None:
    text = MINIMAL.replace(f'["{AGE_PUBLIC}"]', f'["{AGE_PUBLIC}", "{OTHER_PUBLIC}"]')
    config = load_config(write(tmp_path, text))
    assert config.encryption.age_recipients == [AGE_PUBLIC, OTHER_PUBLIC]


# --- which file ----------------------------------------------------------------------------


def test_resolve_cli_value_wins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "/from/env.toml")
    assert resolve_config_path("/from/cli.toml") == Path("/from/cli.toml")


def test_resolve_env_second(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(CONFIG_ENV, "/from/env.toml")
    assert resolve_config_path(None) == Path("/from/env.toml")
    assert resolve_config_path("") == Path("/from/env.toml")


def test_resolve_default_last(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_config_path(None) == Path("lifeboat.toml") == DEFAULT_CONFIG
    monkeypatch.setenv(CONFIG_ENV, "")
    assert resolve_config_path(None) == DEFAULT_CONFIG


def test_default_is_relative_to_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, MINIMAL)
    assert load_config(resolve_config_path(None)).sources["wms"].type == "postgres"


# --- names and paths -----------------------------------------------------------------------


@pytest.mark.parametrize("name", ["a/b", "locks", "-x", "has space"])
def test_source_names_become_folder_names_so_they_are_checked(tmp_path: Path, name: str) -> None:
    error = load_error(tmp_path, MINIMAL.replace("[sources.wms]", f'[sources."{name}"]'))
    assert "invalid source name" in str(error)


def test_home_is_expanded_in_paths(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HOME", str(tmp_path))
    config = load_config(
        write(tmp_path, MINIMAL.replace("/etc/lifeboat/age.key", "~/keys/age.key"))
    )
    assert config.encryption.age_identity_file == tmp_path / "keys" / "age.key"


def test_default_compression_level_is_1(tmp_path: Path) -> None:
    assert load_config(write(tmp_path, MINIMAL)).compression.level == 1
