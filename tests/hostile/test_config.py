"""Hostile configuration and mutelists: each is refused before any value is used, in one line,
exit 2, bounded in time and memory, with nothing changed and no secret repeated.

`./auditor.toml` and a mutelist can both come with a pull request. Every input is built here,
at test time, in `tmp_path`; the auditor runs as a user runs it (`run_auditor`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from datetime import date, datetime
from pathlib import Path

import pytest

from auditor.assessment import MuteEntry, load_mutelist
from auditor.errors import UsageError
from tests.hostile.harness import Ran, assert_unchanged, clean_environment, run_auditor, snapshot

# A flow definition as `auditor lint` reads it from an unpacked legacy package.
_DEFINITION = {
    "triggers": {
        "Recurrence": {"type": "Recurrence", "recurrence": {"frequency": "Day", "interval": 1}}
    },
    "actions": {"Compose": {"type": "Compose", "inputs": "@utcNow()", "runAfter": {}}},
}
_GOOD_MUTELIST = (
    "mute:\n"
    "  - check: flow-monolithic\n"
    "    resource: 'Nightly*'\n"
    "    reason: Being split, ADO 1234\n"
    "    expires: 2099-12-31\n"
)


def _flows(root: Path) -> Path:
    """The tiny folder `auditor lint` is pointed at: one flow."""
    folder = root / "flows" / "Microsoft.Flow" / "flows" / "nightly"
    folder.mkdir(parents=True)
    (folder / "definition.json").write_text(json.dumps(_DEFINITION), encoding="utf-8")
    return root / "flows"


def _alias_bomb() -> str:
    """A "billion laughs": nine levels of nine aliases each, 9**9 strings once expanded."""
    lines = ['l0: &l0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    lines += [f"l{i}: &l{i} [{','.join([f'*l{i - 1}'] * 9)}]" for i in range(1, 9)]
    lines += ["mute:", "  - check: flow-monolithic", "    resource: *l8"]
    lines += ["    reason: x", "    expires: 2099-12-31"]
    return "\n".join(lines) + "\n"


def _config(
    tmp_path: Path,
    *,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Ran:
    """`auditor config` in `tmp_path`, which must be left as it was."""
    before = snapshot(tmp_path)
    ran = run_auditor(
        ["config"], cwd=tmp_path, env=clean_environment(tmp_path, env), timeout=timeout
    )
    assert_unchanged(before, snapshot(tmp_path))
    return ran


def _lint(tmp_path: Path, mutelist: Path, timeout: float = 60) -> Ran:
    """`auditor lint` of the tiny folder with `mutelist`; nothing changes outside `out`."""
    flows = _flows(tmp_path)
    before = snapshot(tmp_path, skip=[tmp_path / "out"])
    ran = run_auditor(
        ["lint", str(flows), "--mutelist", str(mutelist), "--out", "out"],
        cwd=tmp_path,
        timeout=timeout,
    )
    assert_unchanged(before, snapshot(tmp_path, skip=[tmp_path / "out"]))
    return ran


def _bounded(ran: Ran, seconds: float = 10, megabytes: float = 500) -> None:
    assert ran.seconds < seconds, ran.seconds
    assert ran.peak_mb < megabytes, ran.peak_mb


# --- mutelists ---------------------------------------------------------------------------


def test_a_mutelist_that_is_fine_is_used(tmp_path: Path) -> None:
    mutelist = tmp_path / "mute.yaml"
    mutelist.write_text(_GOOD_MUTELIST, encoding="utf-8")
    ran = _lint(tmp_path, mutelist)
    assert ran.code == 0, ran.stderr[-2000:]
    assert (tmp_path / "out" / "report.json").is_file()


def test_a_yaml_alias_bomb_is_refused_unexpanded(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text(_alias_bomb(), encoding="utf-8")
    assert len(bomb.read_bytes()) < 700
    ran = _lint(tmp_path, bomb)
    ran.assert_one_line_error(2, "bomb.yaml", "aliases", "not allowed")
    _bounded(ran, seconds=5)
    assert not (tmp_path / "out").exists()


def test_a_mutelist_over_a_megabyte_is_refused_unread(tmp_path: Path) -> None:
    big = tmp_path / "mute.yaml"
    big.write_text(_GOOD_MUTELIST + "#" * 1_100_000 + "\n", encoding="utf-8")
    ran = _lint(tmp_path, big)
    ran.assert_one_line_error(2, "mute.yaml", "larger than 1,000,000 bytes")
    _bounded(ran)


def test_a_mutelist_that_is_a_fifo_is_never_opened(tmp_path: Path) -> None:
    fifo = tmp_path / "mute.yaml"
    os.mkfifo(fifo)
    ran = _lint(tmp_path, fifo, timeout=20)
    ran.assert_one_line_error(2, "mute.yaml", "FIFO")
    _bounded(ran)


# --- auditor.toml ------------------------------------------------------------------------


def test_a_configuration_that_is_fine_is_shown(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text(
        "[http]\ntimeout_seconds = 30\n[checks.flow-failure-rate]\nfailure_rate = 0.3\n",
        encoding="utf-8",
    )
    ran = _config(tmp_path)
    assert ran.code == 0, ran.stderr[-2000:]
    assert "timeout_seconds" in ran.stdout


def test_an_auditor_toml_that_is_a_folder(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").mkdir()
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "auditor.toml", "is a folder")
    _bounded(ran)


def test_an_auditor_toml_that_is_a_fifo_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "auditor.toml")
    ran = _config(tmp_path, timeout=20)
    ran.assert_one_line_error(2, "auditor.toml", "FIFO")
    _bounded(ran)


def test_a_fifo_named_by_auditor_config(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "settings.toml")
    ran = _config(tmp_path, env={"AUDITOR_CONFIG": "settings.toml"}, timeout=20)
    ran.assert_one_line_error(2, "settings.toml", "FIFO")
    _bounded(ran)


def test_an_auditor_toml_that_is_not_utf8(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_bytes(b'tenant_id = "\xff\xfe\x80"\n')
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "auditor.toml", "not UTF-8")
    _bounded(ran)


def test_a_deeply_nested_auditor_toml(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text(
        "a = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8"
    )
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "auditor.toml", "nested too deeply")
    _bounded(ran)


def test_an_auditor_toml_over_a_megabyte(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text("#" * 1_100_000 + "\n", encoding="utf-8")
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "auditor.toml", "larger than 1,000,000 bytes")
    _bounded(ran)


@pytest.mark.parametrize("value", ["inf", "nan", "-inf", "1e400"])
def test_a_timeout_that_is_not_a_finite_number(tmp_path: Path, value: str) -> None:
    (tmp_path / "auditor.toml").write_text(f"[http]\ntimeout_seconds = {value}\n", encoding="utf-8")
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "auditor.toml", "http.timeout_seconds", "finite")
    _bounded(ran)


@pytest.mark.parametrize("value", ["inf", "nan"])
def test_a_timeout_from_the_environment_that_is_not_finite(tmp_path: Path, value: str) -> None:
    ran = _config(tmp_path, env={"AUDITOR_TIMEOUT": value})
    ran.assert_one_line_error(2, "AUDITOR_TIMEOUT", "finite number of seconds from 1 to 3600")
    _bounded(ran)


def test_a_client_secret_under_a_check_is_refused_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text(
        '[checks.flow-failure-rate]\nclient_secret = "s3cr3t-value"\n', encoding="utf-8"
    )
    ran = _config(tmp_path)
    line = ran.assert_one_line_error(2, "checks.flow-failure-rate.client_secret", "secret")
    assert "AZURE_CLIENT_SECRET" in ran.stderr
    assert "s3cr3t-value" not in ran.stdout + ran.stderr, line
    _bounded(ran)


def test_a_password_in_a_url_is_refused_and_never_shown(tmp_path: Path) -> None:
    (tmp_path / "auditor.toml").write_text(
        '[apis]\nadmin_url = "https://user:hunter2@example.com"\n', encoding="utf-8"
    )
    ran = _config(tmp_path)
    ran.assert_one_line_error(2, "apis.admin_url", "user name or password")
    assert "hunter2" not in ran.stdout + ran.stderr
    _bounded(ran)


@pytest.mark.parametrize(
    "url", ["https://user:hunter2@example.com", "http://user:hunter2@example.com"]
)
def test_a_password_in_a_url_from_the_environment_is_never_shown(tmp_path: Path, url: str) -> None:
    ran = _config(tmp_path, env={"AUDITOR_ADMIN_API_URL": url})
    ran.assert_one_line_error(2, "AUDITOR_ADMIN_API_URL", "user name or password")
    assert "hunter2" not in ran.stdout + ran.stderr
    _bounded(ran)


# --- mutelist entries, in process -----------------------------------------------------------

TODAY = date(2026, 6, 1)
_ENTRY = {
    "check": "flow-monolithic",
    "resource": "Nightly*",
    "reason": "Being split, ADO 1234",
    "expires": "2099-12-31",
}


def _mutelist_yaml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mute.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _refused(path: Path, *needles: str) -> str:
    with pytest.raises(UsageError) as caught:
        load_mutelist(path, today=TODAY)
    message = caught.value.message
    assert "\n" not in message
    assert caught.value.exit_code == 2
    for needle in needles:
        assert needle in message, (needle, message)
    return message


def test_good_yaml_and_toml_mutelists_are_read(tmp_path: Path) -> None:
    toml = tmp_path / "mute.toml"
    toml.write_text(
        '[[mute]]\ncheck = "flow-monolithic"\nresource = "Nightly*"\n'
        'environment = "Contoso Dev"\nreason = "split"\nexpires = 2099-12-31\n',
        encoding="utf-8",
    )
    (entry,) = load_mutelist(toml, today=TODAY)
    assert (entry.resource, entry.environment, entry.expires) == (
        "Nightly*",
        "Contoso Dev",
        date(2099, 12, 31),
    )
    (entry,) = load_mutelist(_mutelist_yaml(tmp_path, _GOOD_MUTELIST), today=TODAY)
    assert entry.environment is None


@pytest.mark.parametrize(
    "text",
    [
        "base: &b flow-monolithic\nmute: []\n",  # an anchor alone
        "mute:\n  - &e {check: flow-monolithic}\n  - *e\n",
        "base: &b {reason: x}\nmute:\n  - <<: *b\n    check: flow-monolithic\n",  # a merge key
    ],
)
def test_yaml_anchors_and_aliases_are_refused(tmp_path: Path, text: str) -> None:
    _refused(_mutelist_yaml(tmp_path, text), "anchors and aliases", "line")


def test_deep_yaml_is_refused_before_it_is_composed(tmp_path: Path) -> None:
    message = _refused(_mutelist_yaml(tmp_path, "mute: " + "[" * 50_000), "nested more than")
    assert len(message) < 300


def test_deep_toml_mutelist_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "mute.toml"
    path.write_text("mute = " + "[" * 100_000 + "]" * 100_000 + "\n", encoding="utf-8")
    _refused(path, "nested too deeply")


def test_a_parse_error_does_not_copy_the_file_into_the_message(tmp_path: Path) -> None:
    path = _mutelist_yaml(tmp_path, "TOKEN_VALUE=sekrit-1234: [\n  : : {\n")
    message = _refused(path, "does not parse", "line")
    assert "sekrit-1234" not in message


@pytest.mark.parametrize(
    ("change", "needles"),
    [
        ({"resource": ["a", "b"]}, ("resource must be non-empty text",)),
        ({"resource": 2024}, ("resource must be non-empty text",)),
        ({"reason": "x" * 1001}, ("reason must be at most 1,000 characters",)),
        ({"reason": "ok \x1b]0;pwned\x07"}, ("reason must not hold control",)),
        ({"environment": "\u202eved"}, ("environment must not hold control",)),
        ({"environment": None}, ("environment must be non-empty text",)),
        ({"expires": "2099-12-31T10:00:00"}, ("expires must be a date",)),
        ({"expires": "x" * 5000}, ("expires must be a date",)),
        ({"expires": 20991231}, ("expires must be a date",)),
        ({"check": ["flow-monolithic"]}, ("unknown check id", "a list of 1")),
        ({"check": "\x1b[2Jnope"}, ("unknown check id",)),
        ({"env": "Contoso"}, ("'env' is not a key of an entry",)),
    ],
)
def test_every_field_of_an_entry_is_checked(
    tmp_path: Path, change: dict[str, object], needles: tuple[str, ...]
) -> None:
    entry = {**_ENTRY, **change}
    path = _mutelist_yaml(tmp_path, json.dumps({"mute": [entry]}))  # JSON is YAML
    message = _refused(path, "mute[0]", *needles)
    assert "\x1b" not in message
    assert "\u202e" not in message
    assert len(message) < 400


def test_a_yaml_datetime_is_not_a_date(tmp_path: Path) -> None:
    text = _GOOD_MUTELIST.replace("2099-12-31", "2099-12-31 10:00:00")
    _refused(_mutelist_yaml(tmp_path, text), "expires must be a date")


def test_a_number_of_thousands_of_digits_is_one_line(tmp_path: Path) -> None:
    _refused(_mutelist_yaml(tmp_path, "mute: " + "9" * 5000 + "\n"), "does not parse")


def test_too_many_entries_are_refused(tmp_path: Path) -> None:
    path = _mutelist_yaml(tmp_path, json.dumps({"mute": [_ENTRY] * 1001}))
    _refused(path, "1,001 entries", "at most 1,000")


def test_a_mute_entry_checks_its_fields_wherever_it_is_built() -> None:
    with pytest.raises(ValueError, match="resource must be non-empty text"):
        MuteEntry("flow-monolithic", ["*"], "x", date(2099, 1, 1))  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="expires must be a date"):
        MuteEntry("flow-monolithic", "*", "x", datetime(2099, 1, 1))
