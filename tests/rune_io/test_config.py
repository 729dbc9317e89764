"""Settings: source precedence, credential families, masking, clear errors."""

from __future__ import annotations

import pickle

import pytest

from rune_io.config import Secret, Settings, load_settings
from rune_io.errors import ConfigError

pytestmark = pytest.mark.usefixtures("clean_env")

SECRET = "s3cr3t-value-do-not-leak"


def write_runeq(home, text: str):
    d = home / ".rune"
    d.mkdir(exist_ok=True)
    (d / "config").write_text(text)
    return d / "config"


def test_runeq_file_just_works(clean_env):
    write_runeq(
        clean_env,
        f"access_token_id: abc123456789\naccess_token_secret: {SECRET}\n"
        "stream_url: http://localhost:9/\nstrive_url: https://x\nauth_method: access_token\n",
    )
    s = load_settings()
    assert s.auth_method == "access_token"
    assert s.access_token_id == "abc123456789"
    assert s.access_token_secret.get_secret_value() == SECRET
    assert s.stream_url == "http://localhost:9"
    assert s.graph_url == "https://graph.runelabs.io"
    assert "runeq config file" in s.sources["access_token_id"]
    assert s.auth_headers() == {
        "X-Rune-User-Access-Token-Id": "abc123456789",
        "X-Rune-User-Access-Token-Secret": SECRET,
    }


def test_precedence_args_env_project_runeq(clean_env, monkeypatch, tmp_path):
    write_runeq(clean_env, "jwt: file-jwt\nstream_url: http://runeq:1\ngraph_url: http://runeq:2\n")
    proj = tmp_path / "work" / "rune-lake.yaml"
    proj.write_text(
        "lake: {root: ./lake}\nrune:\n  stream_url: http://project:1\n  read_timeout: 33\n"
    )
    monkeypatch.setenv("RUNE_STREAM_URL", "http://env:1")
    monkeypatch.setenv("RUNE_CLIENT_KEY_ID", "ck-id")
    monkeypatch.setenv("RUNE_CLIENT_ACCESS_KEY", SECRET)
    s = load_settings(read_timeout=44)
    assert s.stream_url == "http://env:1"
    assert s.graph_url == "http://runeq:2"  # only the runeq file sets it
    assert s.read_timeout == 44
    assert s.auth_method == "client_keys"  # env beats the file's jwt, whole
    assert s.jwt is None
    assert s.auth_headers() == {"X-Rune-Client-Key-Id": "ck-id", "X-Rune-Client-Access-Key": SECRET}
    s2 = load_settings()
    assert s2.read_timeout == 33
    assert "project file" in s2.sources["read_timeout"]
    assert "RUNE_STREAM_URL" in s2.sources["stream_url"]
    s3 = load_settings(jwt="arg-jwt", stream_url="https://override.example")
    assert s3.auth_method == "jwt"
    assert s3.auth_headers() == {"X-Rune-User-Access-Token": "arg-jwt"}
    assert s3.stream_url == "https://override.example"


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(access_token_id="a", access_token_secret=SECRET),
        dict(client_key_id="a", client_access_key=SECRET),
        dict(jwt=SECRET),
    ],
)
def test_secrets_never_in_repr_str_describe_or_pickle_text(kwargs):
    s = load_settings(**kwargs)
    for text in (repr(s), str(s), s.describe(), repr(Secret(SECRET)), str(Secret(SECRET))):
        assert SECRET not in text
    assert "argument" in s.describe()
    assert pickle.loads(pickle.dumps(s)) == s


def test_missing_credentials_says_where_and_what_to_do():
    with pytest.raises(ConfigError) as ei:
        load_settings()
    msg = str(ei.value)
    assert "RUNE_ACCESS_TOKEN_ID" in msg and "environment" in msg
    # what a plain install has (runeq's CLI is not installed with rune-lake)
    assert "runeq configure" not in msg and "~/.rune/config" in msg and "rune-lake settings" in msg


def test_incomplete_env_family(monkeypatch):
    monkeypatch.setenv("RUNE_ACCESS_TOKEN_ID", "only-id")
    with pytest.raises(ConfigError, match="environment.*RUNE_ACCESS_TOKEN_SECRET is missing"):
        load_settings()


def test_incomplete_source_is_not_completed_by_a_lower_one(clean_env, monkeypatch):
    write_runeq(clean_env, f"access_token_id: x\naccess_token_secret: {SECRET}\n")
    monkeypatch.setenv("RUNE_ACCESS_TOKEN_SECRET", "other")
    with pytest.raises(ConfigError, match="RUNE_ACCESS_TOKEN_ID is missing"):
        load_settings()


def test_mixed_families_in_one_source(clean_env):
    write_runeq(clean_env, f"access_token_id: x\naccess_token_secret: {SECRET}\njwt: y\n")
    with pytest.raises(ConfigError) as ei:
        load_settings()
    assert "more than one kind" in str(ei.value) and "config" in str(ei.value)
    assert SECRET not in str(ei.value)
    # runeq's auth_method disambiguates, as in runeq
    write_runeq(
        clean_env, f"auth_method: jwt\naccess_token_id: x\naccess_token_secret: {SECRET}\njwt: y\n"
    )
    assert load_settings().auth_method == "jwt"


def test_mixed_families_in_arguments():
    with pytest.raises(ConfigError, match="argument: credentials of more than one kind"):
        load_settings(jwt="a", client_key_id="b", client_access_key="c")


def test_bad_yaml_names_file_and_line(clean_env):
    path = write_runeq(clean_env, "access_token_id: [unclosed\n")
    with pytest.raises(ConfigError) as ei:
        load_settings()
    assert str(path) in str(ei.value) and "line" in str(ei.value)


def test_unreadable_file(clean_env):
    path = write_runeq(clean_env, "jwt: x\n")
    path.chmod(0)
    try:
        with open(path):
            pytest.skip("running as root: chmod 0 does not stop reads")
    except PermissionError:
        pass
    with pytest.raises(ConfigError, match="cannot be read"):
        load_settings()


def test_explicit_project_file_must_exist(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(config_path=tmp_path / "nope.yaml", jwt="x")


def test_project_file_unknown_key(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("rune:\n  stream_ulr: http://x\n")
    with pytest.raises(ConfigError, match="rune.stream_ulr"):
        load_settings(config_path=p, jwt="x")


def test_project_file_bad_type(tmp_path):
    p = tmp_path / "p.yaml"
    p.write_text("rune:\n  read_timeout: soon\n")
    with pytest.raises(ConfigError, match=r"rune.read_timeout.*must be a number"):
        load_settings(config_path=p, jwt="x")


@pytest.mark.parametrize(
    "url,problem",
    [
        ("stream.runelabs.io", "http:// or https://"),
        ("ftp://x", "http:// or https://"),
        ("http://", "no host"),
        ("https://user:pw@host", "credentials"),
        ("https://host?x=1", "query"),
        ("http://host:99999", "port"),
    ],
)
def test_bad_url(monkeypatch, url, problem):
    monkeypatch.setenv("RUNE_STREAM_URL", url)
    with pytest.raises(ConfigError) as ei:
        load_settings(jwt="x")
    assert problem in str(ei.value) and "RUNE_STREAM_URL" in str(ei.value)
    assert "pw" not in str(ei.value)


def test_unknown_argument():
    with pytest.raises(ConfigError, match="unknown argument"):
        load_settings(jwt="x", steam_url="http://x")


def test_settings_invariants():
    with pytest.raises(ConfigError, match="needs access_token_secret"):
        Settings(auth_method="access_token", access_token_id="x")
    s = Settings(auth_method="jwt", jwt="plain")  # plain str is wrapped
    assert isinstance(s.jwt, Secret)
    with pytest.raises(ConfigError, match="timeout"):
        Settings(auth_method="jwt", jwt="x", read_timeout=0)
    with pytest.raises(ConfigError, match="max_attempts"):
        _ = Settings(auth_method="jwt", jwt="x", max_attempts=0).retry_policy


def test_timeouts_and_retry_knobs():
    s = load_settings(jwt="x", connect_timeout=1, read_timeout=2, max_attempts=3, backoff_cap=4)
    assert s.timeout == (1.0, 2.0)
    p = s.retry_policy
    assert (p.max_attempts, p.cap) == (3, 4.0)
    assert s.verify_tls is True
