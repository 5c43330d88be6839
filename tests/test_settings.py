"""Settings: precedence, validation messages, and secrets kept out of the file."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from auditor.config_file import MAX_FILE_BYTES, read_limited
from auditor.errors import ConfigError
from auditor.settings import Secret, load_settings

TENANT = "11111111-2222-3333-4444-555555555555"


def write(path: Path, text: str) -> Path:
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_file(tmp_path: Path) -> None:
    settings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings.config_file is None
    assert settings.authority_host == "https://login.microsoftonline.com"
    assert settings.auth_method == "client-secret"
    assert settings.max_concurrency == 16
    assert settings.discover_environments is True
    assert settings.store_path == tmp_path / "auditor-data" / "auditor.duckdb"


def test_precedence_flag_over_env_over_file_over_default(tmp_path: Path) -> None:
    config = write(
        tmp_path / "auditor.toml",
        f'tenant_id = "{TENANT}"\n[http]\nmax_concurrency = 8\ntimeout_seconds = 20\n',
    )
    env = {"AUDITOR_MAX_CONCURRENCY": "12", "AUDITOR_TIMEOUT": "30"}

    from_file = load_settings({}, environ={}, cwd=tmp_path)
    assert (from_file.max_concurrency, from_file.timeout_seconds) == (8, 20.0)
    assert from_file.sources["max_concurrency"] == f"file {config}"

    from_env = load_settings({}, environ=env, cwd=tmp_path)
    assert (from_env.max_concurrency, from_env.timeout_seconds) == (12, 30.0)
    assert from_env.sources["max_concurrency"] == "env AUDITOR_MAX_CONCURRENCY"

    from_flag = load_settings({"max_concurrency": 3}, environ=env, cwd=tmp_path)
    assert from_flag.max_concurrency == 3
    assert from_flag.timeout_seconds == 30.0
    assert from_flag.sources["max_concurrency"] == "flag"
    assert from_flag.tenant_id == TENANT


def test_config_path_from_flag_then_env(tmp_path: Path) -> None:
    write(tmp_path / "a.toml", 'tenant_id = "from-a"\n')
    write(tmp_path / "b.toml", 'tenant_id = "from-b"\n')
    assert load_settings({}, environ={"AUDITOR_CONFIG": "b.toml"}, cwd=tmp_path).tenant_id == (
        "from-b"
    )
    flagged = load_settings(
        {"config": "a.toml"}, environ={"AUDITOR_CONFIG": "b.toml"}, cwd=tmp_path
    )
    assert flagged.tenant_id == "from-a"


def test_azure_variable_names_are_honoured(tmp_path: Path) -> None:
    settings = load_settings(
        {}, environ={"AZURE_TENANT_ID": TENANT, "AZURE_CLIENT_ID": "app"}, cwd=tmp_path
    )
    assert (settings.tenant_id, settings.client_id) == (TENANT, "app")


def test_full_file_is_read(tmp_path: Path) -> None:
    ca = write(tmp_path / "ca.pem", "x")
    write(
        tmp_path / "auditor.toml",
        f"""
tenant_id = "{TENANT}"
store = "data/store.duckdb"

[auth]
method = "client-certificate"
client_id = "app-id"
authority_host = "https://login.microsoftonline.us/"

[apis]
admin_url = "https://api.bap.microsoft.us"
flow_url = "https://gov.api.flow.microsoft.us"
flow_scope = "https://gov.service.flow.microsoft.us/.default"

[http]
ca_bundle = "ca.pem"

[[environments]]
name = "Prod"
id = "env-1"
dataverse_url = "https://contoso.crm.dynamics.com/"

[checks.flow-unnecessary-runs]
max_rate = 0.3
""",
    )
    settings = load_settings({}, environ={}, cwd=tmp_path / "..")
    # Without --config, ./auditor.toml is only read from the working directory.
    assert settings.config_file is None
    settings = load_settings({"config": tmp_path / "auditor.toml"}, environ={}, cwd=Path("/"))
    assert settings.auth_method == "client-certificate"
    assert settings.authority_host == "https://login.microsoftonline.us"
    assert settings.flow_api_scope == "https://gov.service.flow.microsoft.us/.default"
    assert settings.discover_environments is False
    assert settings.environments[0].dataverse_url == "https://contoso.crm.dynamics.com"
    # Relative paths in the file are relative to the file.
    assert settings.store_path == tmp_path / "data" / "store.duckdb"
    assert settings.ca_bundle == ca
    assert settings.threshold("flow-unnecessary-runs", "max_rate", 0.5) == 0.3
    assert settings.threshold("other-check", "max_rate", 0.5) == 0.5


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[http]\nmax_concurrency = 80\n", "http.max_concurrency", "from 1 to 50"),
        ("[http]\nmax_concurency = 8\n", "http.max_concurency", "not a known setting"),
        ('[auth]\nmethod = "password"\n', "auth.method", "must be one of"),
        ('[auth]\nauthority_host = "http://login"\n', "auth.authority_host", "https://"),
        ('environments = "some"\n', "environments", '"all" or a list'),
        ('[[environments]]\nname = "x"\nid = "y"\n', "environments[0].dataverse_url", "required"),
        (
            '[[environments]]\nname = "x"\nid = "y"\ndataverse_url = "http://a"\n',
            "environments[0].dataverse_url",
            "https://",
        ),
        ("tenant_id = [1\n", "(file)", "not valid TOML"),
        ('[http]\nca_bundle = "missing.pem"\n', "http.ca_bundle", "does not exist"),
    ],
)
def test_config_errors_name_the_key_the_file_and_the_expectation(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    config = write(tmp_path / "auditor.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={}, cwd=tmp_path)
    assert caught.value.key == key
    assert str(config) in caught.value.message
    assert expected in caught.value.message
    assert caught.value.exit_code == 2


def test_env_errors_name_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={"AUDITOR_MAX_CONCURRENCY": "many"}, cwd=tmp_path)
    assert caught.value.key == "AUDITOR_MAX_CONCURRENCY"
    assert "env AUDITOR_MAX_CONCURRENCY" in caught.value.message


def test_missing_config_file_named_by_flag(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings({"config": "nope.toml"}, environ={}, cwd=tmp_path)


@pytest.mark.parametrize("key", ["client_secret", "auth.client_secret", "auth.password"])
def test_secrets_are_refused_in_the_file(tmp_path: Path, key: str) -> None:
    table, _, name = key.rpartition(".")
    text = (f"[{table}]\n" if table else "") + f'{name} = "hunter2-secret"\n'
    write(tmp_path / "auditor.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={}, cwd=tmp_path)
    assert "AZURE_CLIENT_SECRET" in caught.value.hint
    assert "hunter2-secret" not in caught.value.message


def test_secrets_come_from_the_environment_and_never_show(tmp_path: Path) -> None:
    settings = load_settings(
        {},
        environ={
            "AZURE_CLIENT_SECRET": "s3cr3t-value",
            "AZURE_CLIENT_CERTIFICATE_PATH": "/certs/app.pem",
            "AZURE_CLIENT_CERTIFICATE_PASSWORD": "pfx-password",
        },
        cwd=tmp_path,
    )
    assert settings.credentials.client_secret == Secret("s3cr3t-value")
    assert settings.credentials.certificate_path == Path("/certs/app.pem")
    shown = repr(settings) + str(settings.credentials) + repr(settings.credentials)
    assert "s3cr3t-value" not in shown
    assert "pfx-password" not in shown


def test_all_environments_flag_overrides_the_list(tmp_path: Path) -> None:
    write(
        tmp_path / "auditor.toml",
        '[[environments]]\nname = "a"\nid = "b"\ndataverse_url = "https://a.crm.dynamics.com"\n',
    )
    assert load_settings({}, environ={}, cwd=tmp_path).discover_environments is False
    settings = load_settings({"all_environments": True}, environ={}, cwd=tmp_path)
    assert settings.discover_environments is True


# --- a file checked before any value is used -------------------------------------------------


@pytest.mark.parametrize(
    ("text", "key", "expected"),
    [
        ("[http]\ntimeout_seconds = inf\n", "http.timeout_seconds", "finite"),
        ("[http]\ntimeout_seconds = nan\n", "http.timeout_seconds", "finite"),
        ("[http]\ntimeout_seconds = 0.5\n", "http.timeout_seconds", "from 1 to 3600"),
        ("[http]\ntimeout_seconds = 3601\n", "http.timeout_seconds", "from 1 to 3600"),
        ("[http]\nmax_concurrency = nan\n", "http.max_concurrency", "finite"),
        ("[http]\nmax_concurrency = 0\n", "http.max_concurrency", "from 1 to 50"),
        ("[http]\nmax_retries = 21\n", "http.max_retries", "from 0 to 20"),
        ("[http]\npage_size = 5001\n", "http.page_size", "from 1 to 5000"),
        ("[http]\npage_size = 1" + "0" * 40 + "\n", "http.page_size", "out of range"),
        ("tenant_id = 1" + "0" * 5000 + "\n", "(file)", "not valid TOML"),
        ("[checks.flow-failure-rate]\nfailure_rate = inf\n", "checks.flow-failure-rate", "finite"),
        ("[checks.flow-failure-rate]\nfailure_rate = -1\n", "checks.flow-failure-rate", "least 0"),
        ("[checks.flow-failure-rate]\nfailure_rate = [1]\n", "checks.flow-failure-rate", "number"),
        ('[checks."bad\\u001b[31m"]\nx = 1\n', "checks.bad", "not a check id"),
        ('[checks.flow-failure-rate]\n"Rate!" = 1\n', "checks.flow-failure-rate", "threshold name"),
        ('tenant_id = "' + "x" * 5000 + '"\n', "tenant_id", "at most 4,096 characters"),
        ('tenant_id = "abc\\u001b]0;title\\u0007"\n', "tenant_id", "control"),
        ("a = " + "[" * 12 + "]" * 12 + "\n", "a[0][0][0][0][0][0][0][0]", "nested more than 8"),
        ("a = " + "[" * 100_000 + "]" * 100_000 + "\n", "(file)", "nested too deeply"),
        ('"\\u001b[2Jtypo" = 1\n', "typo", "not a known setting"),
        ('[http]\nca_bundle = "."\n', "http.ca_bundle", "regular file"),
    ],
)
def test_values_are_checked_for_type_size_and_range(
    tmp_path: Path, text: str, key: str, expected: str
) -> None:
    config = write(tmp_path / "auditor.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={}, cwd=tmp_path)
    message = caught.value.message
    assert caught.value.key.startswith(key), caught.value.key
    assert str(config) in message
    assert expected in message
    assert "\x1b" not in message
    assert len(message) < 400


@pytest.mark.parametrize(
    "text",
    [
        '[checks.flow-failure-rate]\nclient_secret = "hunter2-secret"\n',
        '[checks.flow-failure-rate]\napiKey = "hunter2-secret"\n',
        'token = "hunter2-secret"\n',
        '[http]\nAPI-KEY = "hunter2-secret"\n',
        '[auth]\ncertificate_password = "hunter2-secret"\n',
        '[[environments]]\nname = "a"\nid = "b"\npassword = "hunter2-secret"\n',
        'environments = [{name = "a", id = "b", secret = "hunter2-secret"}]\n',
        '[apis]\nConnectionString = "hunter2-secret"\n',
    ],
)
def test_secret_looking_keys_are_refused_anywhere(tmp_path: Path, text: str) -> None:
    write(tmp_path / "auditor.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={}, cwd=tmp_path)
    assert "secret" in caught.value.message
    assert "AZURE_CLIENT_SECRET" in caught.value.hint
    assert "hunter2" not in caught.value.message + caught.value.hint


def test_the_token_cache_is_not_a_secret(tmp_path: Path) -> None:
    write(tmp_path / "auditor.toml", '[auth]\ntoken_cache = "cache.bin"\n')
    settings = load_settings({}, environ={}, cwd=tmp_path)
    assert settings.token_cache_path == tmp_path / "cache.bin"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ('[apis]\nadmin_url = "https://user:hunter2@example.com"\n', "apis.admin_url"),
        ('[apis]\nflow_url = "http://user:hunter2@example.com"\n', "apis.flow_url"),
        ('[auth]\nauthority_host = "https://hunter2@login.example.com"\n', "auth.authority_host"),
        (
            '[[environments]]\nname = "a"\nid = "b"\n'
            'dataverse_url = "https://u:hunter2@a.crm.dynamics.com"\n',
            "environments[0].dataverse_url",
        ),
        ('[checks.flow-failure-rate]\nnote = "ftp://u:hunter2@h"\n', "checks.flow-failure-rate"),
    ],
)
def test_urls_with_user_info_are_refused_without_echo(tmp_path: Path, text: str, key: str) -> None:
    write(tmp_path / "auditor.toml", text)
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={}, cwd=tmp_path)
    assert caught.value.key.startswith(key)
    assert "user name or password" in caught.value.message
    assert "hunter2" not in caught.value.message + caught.value.hint


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("AUDITOR_TIMEOUT", "inf", "finite"),
        ("AUDITOR_TIMEOUT", "nan", "finite"),
        ("AUDITOR_TIMEOUT", "1e400", "finite"),
        ("AUDITOR_MAX_CONCURRENCY", "nan", "whole number"),
        ("AUDITOR_MAX_CONCURRENCY", "9" * 5000, "whole number"),
        ("AUDITOR_ADMIN_API_URL", "https://u:hunter2@example.com", "user name or password"),
        ("AUDITOR_FLOW_API_URL", "http://u:hunter2@example.com", "user name or password"),
        ("AUDITOR_ADMIN_API_SCOPE", "https://u:hunter2@x/.default", "user name or password"),
        ("AUDITOR_TENANT_ID", "t\x1b[31m", "control"),
    ],
)
def test_environment_values_are_checked_alike(
    tmp_path: Path, name: str, value: str, expected: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        load_settings({}, environ={name: value}, cwd=tmp_path)
    assert caught.value.key == name
    assert expected in caught.value.message
    assert "hunter2" not in caught.value.message
    assert len(caught.value.message) < 300


def test_a_folder_a_fifo_and_a_big_file_are_refused_unread(tmp_path: Path) -> None:
    (tmp_path / "folder.toml").mkdir()
    os.mkfifo(tmp_path / "fifo.toml")
    write(tmp_path / "big.toml", "#" * (MAX_FILE_BYTES + 1))
    (tmp_path / "latin1.toml").write_bytes(b'tenant_id = "caf\xe9"\n')
    for name, expected in [
        ("folder.toml", "is a folder"),
        ("fifo.toml", "is a FIFO"),
        ("big.toml", "larger than 1,000,000 bytes"),
        ("latin1.toml", "not UTF-8"),
    ]:
        with pytest.raises(ConfigError) as caught:
            load_settings({}, environ={"AUDITOR_CONFIG": name}, cwd=tmp_path)
        assert expected in caught.value.message, name


def test_an_auditor_toml_folder_in_the_working_directory_is_not_ignored(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").mkdir()
    with pytest.raises(ConfigError, match="is a folder"):
        load_settings({}, environ={}, cwd=tmp_path)


def test_read_limited_refuses_devices_and_reads_regular_files(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="device"):
        read_limited(Path("/dev/zero"))
    assert read_limited(write(tmp_path / "a.toml", "x = 1\n")) == b"x = 1\n"
