"""Each kind of repository refuses the settings it cannot honour, at config load and when
a backend is opened directly: nothing a user asked for is dropped silently."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from lifeboat.config.load import load_config
from lifeboat.config.model import RepositoryConfig
from lifeboat.errors import ConfigError
from lifeboat.pipeline.crypto import generate_age_identity
from lifeboat.repo.layout import object_kind
from lifeboat.storage.options import CONFIG_KEYS, HONOURED, StorageOptions
from lifeboat.storage.registry import open_storage
from tests.unit.helpers import run
from tests.walfiles import segment_file

_, AGE_PUBLIC = generate_age_identity()

# one URL of each kind, and how the messages name it
BACKENDS = {
    "file": ("file:///srv/backups", "local"),
    "path": ("/srv/backups", "local"),
    "mem": ("mem://repo", "memory"),
    "s3": ("s3://acme/wms?region=eu-west-1", "S3"),
    "az": ("az://backups/wms?account=acme", "Azure"),
    "gs": ("gs://acme/wms", "GCS"),
}
# a valid value of every repository option that reaches the storage backend
OPTIONS: dict[str, object] = {
    "storage_class": "STANDARD_IA",
    "wal_storage_class": "GLACIER_IR",
    "server_side_encryption": "AES256",
    "kms_key_id": "alias/lifeboat",
    "object_lock_days": 7,
    "object_lock_mode": "GOVERNANCE",
    "access_tier": "Cool",
    "part_size_mb": 32,
    "upload_concurrency": 2,
    "max_attempts": 3,
    "upload_checksum": "md5",
}
# what each backend acts on, written out here rather than read from the declaration
UPLOADS = {"part_size_mb", "upload_concurrency", "max_attempts"}
HONOURS: dict[str, set[str]] = {
    "file": set(),
    "path": set(),
    "mem": set(),
    "s3": UPLOADS
    | {
        "storage_class",
        "wal_storage_class",
        "server_side_encryption",
        "kms_key_id",
        "object_lock_days",
        "object_lock_mode",
        "upload_checksum",
    },
    "az": UPLOADS | {"access_tier"},
    # GCS sends the chunks of a resumable upload one at a time
    "gs": {"part_size_mb", "max_attempts", "storage_class", "wal_storage_class"},
}
URL_PARAMETERS = {"s3": {"region", "endpoint"}, "az": {"account"}}


def toml_value(value: object) -> str:
    return f'"{value}"' if isinstance(value, str) else str(value)


def config_file(tmp_path: Path, url: str, settings: dict[str, object]) -> Path:
    lines = "".join(f"{key} = {toml_value(value)}\n" for key, value in settings.items())
    path = tmp_path / "lifeboat.toml"
    path.write_text(
        f'[repositories.vault]\nurl = "{url}"\n{lines}\n'
        f'[encryption]\nage_recipients = ["{AGE_PUBLIC}"]\n',
        encoding="utf-8",
    )
    return path


@pytest.mark.parametrize("option", sorted(OPTIONS))
@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_each_backend_takes_its_own_options_and_refuses_the_others(
    tmp_path: Path, kind: str, option: str
) -> None:
    url, name = BACKENDS[kind]
    path = config_file(tmp_path, url, {option: OPTIONS[option]})
    if option in HONOURS[kind]:
        assert option in load_config(path).repositories["vault"].model_fields_set
        return
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    shown = url.split("?", 1)[0]
    assert str(refused.value) == (
        f"{path}: repository 'vault' ({shown}): {option} is not supported by {name} "
        f"repositories (it applies to {owners(option)} repositories)"
    )


def owners(option: str) -> str:
    names = [n for k, (_, n) in BACKENDS.items() if k not in ("path",) and option in HONOURS[k]]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + f" and {names[-1]}"


# every option with a default other than "not set", at that default
DEFAULTS = {
    option: RepositoryConfig.model_fields[option].default
    for option in OPTIONS
    if RepositoryConfig.model_fields[option].default is not None
}


def test_the_defaults_of_the_table_are_those_of_the_storage() -> None:
    assert DEFAULTS and RepositoryConfig(url="mem://repo").storage_options() == StorageOptions()


@pytest.mark.parametrize("kind", sorted(BACKENDS))
def test_an_option_written_at_its_default_value_is_accepted(tmp_path: Path, kind: str) -> None:
    # A default asks the backend for nothing it does not do anyway: object_lock_mode =
    # "COMPLIANCE" without object_lock_days locks nothing, part_size_mb = 16 on a local
    # folder changes nothing. Refusing them broke files written before the check existed.
    url, _ = BACKENDS[kind]
    repo = load_config(config_file(tmp_path, url, DEFAULTS)).repositories["vault"]
    assert set(DEFAULTS) <= repo.model_fields_set
    assert repo.unsupported_settings() == []


def test_every_refused_option_is_named_in_one_line(tmp_path: Path) -> None:
    path = config_file(
        tmp_path,
        "file:///srv/backups",
        {"access_tier": "Cool", "object_lock_days": 30, "server_side_encryption": "AES256"},
    )
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "\n" not in message
    for option in ("access_tier", "object_lock_days", "server_side_encryption"):
        assert f"{option} is not supported by local repositories" in message


def test_retention_applies_to_every_kind_of_repository(tmp_path: Path) -> None:
    for url, _ in BACKENDS.values():
        path = tmp_path / "lifeboat.toml"
        path.write_text(
            f'[repositories.vault]\nurl = "{url}"\n[repositories.vault.retention]\n'
            f'keep_last = 3\n[encryption]\nage_recipients = ["{AGE_PUBLIC}"]\n',
            encoding="utf-8",
        )
        assert load_config(path).repositories["vault"].retention is not None


@pytest.mark.parametrize("parameter", ["region", "endpoint", "account", "colour"])
@pytest.mark.parametrize("kind", ["file", "mem", "s3", "az", "gs"])
def test_url_parameters_count_as_options(tmp_path: Path, kind: str, parameter: str) -> None:
    base, name = BACKENDS[kind]
    value = "https://minio.internal:9000" if parameter == "endpoint" else "x1"
    url = f"{base}{'&' if '?' in base else '?'}{parameter}={value}"
    path = config_file(tmp_path, url, {})
    if parameter in URL_PARAMETERS.get(kind, set()):
        assert load_config(path).repositories["vault"].url == url
        return
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert f"repository 'vault' ({base.split('?', 1)[0]}): " in message
    assert f"URL parameter {parameter}= is not supported by {name} repositories" in message
    if parameter in ("region", "endpoint"):
        assert "(it applies to S3 repositories)" in message
    if parameter == "account":
        assert "(it applies to Azure repositories)" in message


def test_a_secret_in_a_url_parameter_is_not_echoed(tmp_path: Path) -> None:
    # a SAS token pasted into an Azure URL: the parameter is named, its value never shown
    path = config_file(tmp_path, "az://backups/wms?sv=2022-11-02&sig=TOPSECRET", {})
    with pytest.raises(ConfigError) as refused:
        load_config(path)
    message = str(refused.value)
    assert "URL parameter sig= is not supported by Azure repositories" in message
    assert "credentials come from the environment" in message
    assert "TOPSECRET" not in message


def test_a_plain_path_may_hold_a_question_mark(tmp_path: Path) -> None:
    path = config_file(tmp_path, str(tmp_path / "odd?name=1"), {})
    assert load_config(path).repositories["vault"].url.endswith("odd?name=1")


@pytest.mark.parametrize(
    ("url", "options", "expected"),
    [
        (
            "file:///srv/backups",
            StorageOptions(object_lock_days=7),
            "repository file:///srv/backups: object_lock_days is not supported by local",
        ),
        (
            "mem://repo",
            StorageOptions(part_size=32 * 1024 * 1024),
            "repository mem://repo: part_size_mb is not supported by memory",
        ),
        (
            "gs://acme/wms?region=eu",
            StorageOptions(),
            "repository gs://acme/wms: URL parameter region= is not supported by GCS",
        ),
    ],
)
def test_opening_a_backend_refuses_what_it_cannot_honour(
    url: str, options: StorageOptions, expected: str
) -> None:
    with pytest.raises(ConfigError) as refused:
        open_storage(url, options, classify=object_kind)
    assert str(refused.value).startswith(expected)


# --- the command line ------------------------------------------------------------------------


def local_config(tmp_path: Path, settings: str) -> tuple[Path, Path]:
    """A config file with a local repository whose table holds settings; (file, repository)."""
    repo = tmp_path / "repo"
    config = tmp_path / "lifeboat.toml"
    config.write_text(
        f'[repositories.local]\nurl = "file://{repo}"\n{settings}'
        f'[encryption]\nage_recipients = ["{AGE_PUBLIC}"]\n'
        '[sources.wms]\ndsn = "postgresql://backup@db.internal/wms"\n',
        encoding="utf-8",
    )
    return config, repo


@pytest.mark.parametrize("command", [["init"], ["list"], ["wal-push", "wms", "/nonexistent"]])
def test_commands_refuse_a_worm_setting_on_a_local_repository(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: list[str]
) -> None:
    config, repo = local_config(tmp_path, "object_lock_days = 2557\n")
    assert run(["--config", str(config), *command]) == 2
    assert capsys.readouterr().err == (
        f"lifeboat: error: {config}: repository 'local' (file://{repo}): object_lock_days is "
        "not supported by local repositories (it applies to S3 repositories)\n"
    )
    assert not repo.exists()


@pytest.mark.parametrize("command", ["list", "wal-push"])
def test_commands_take_a_local_repository_with_defaults_written_out(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    # a file written before the check, read by archive_command's wal-push after an upgrade
    config, _ = local_config(tmp_path, 'part_size_mb = 16\nobject_lock_mode = "COMPLIANCE"\n')
    assert run(["--config", str(config), "init"]) == 0, capsys.readouterr().err
    arguments = [command]
    if command == "wal-push":
        arguments += ["wms", str(segment_file(tmp_path / "wal", "000000010000000000000001"))]
    assert run(["--config", str(config), *arguments]) == 0, capsys.readouterr().err


# --- the documentation says what the declaration says -----------------------------------------

DOCS = Path(__file__).resolve().parents[3] / "docs"


def table_rows(document: Path, header: str) -> list[list[str]]:
    """The cells of each row of the markdown table whose header row starts with header."""
    lines = document.read_text(encoding="utf-8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2 :]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def honoured(scheme: str, name: str) -> bool:
    """Whether the declaration says the backend takes this documented key or ?parameter=."""
    backend = HONOURED[scheme]
    if name.startswith("?"):
        return name.strip("?=") in backend.url_parameters
    fields = {key: field for field, key in CONFIG_KEYS.items()}
    return fields.get(name, name) in backend.options


def test_the_configuration_reference_matches_the_declarations() -> None:
    rows = table_rows(DOCS / "configuration.md", "| Key or URL parameter |")
    documented = set()
    for names, *columns in rows:
        for name in (n.strip("`") for n in names.split(", ")):
            documented.add(name)
            if name == "retention":  # not a storage option: every repository has it
                assert columns == ["yes"] * 4
                continue
            for scheme, column in zip(("file", "s3", "az", "gs"), columns, strict=True):
                assert (column == "yes") == honoured(scheme, name), (name, scheme)
    every = {CONFIG_KEYS.get(f, f) for f in StorageOptions._fields}
    every |= {f"?{p}=" for b in HONOURED.values() for p in b.url_parameters}
    assert every | {"retention"} == documented


def test_the_cloud_storage_guide_matches_the_declarations() -> None:
    for key, _default, *columns, _meaning in table_rows(
        DOCS / "cloud-storage.md", "| Key | Default | S3 | Azure | GCS |"
    ):
        name = key.strip("`")
        for scheme, column in zip(("s3", "az", "gs"), columns, strict=True):
            assert (column == "yes") == honoured(scheme, name), (name, scheme)


def test_the_documented_repository_tables_are_valid() -> None:
    documents = [DOCS.parent / "README.md", *sorted(DOCS.glob("*.md"))]
    checked = 0
    for document in documents:
        text = document.read_text(encoding="utf-8")
        for block in re.findall(r"```toml\n(.*?)```", text, re.DOTALL):
            for name, table in tomllib.loads(block).get("repositories", {}).items():
                repo = RepositoryConfig.model_validate(table)
                assert repo.unsupported_settings() == [], (document.name, name)
                checked += 1
    assert checked >= 10  # README's, configuration.md's and cloud-storage.md's examples
