"""Secret references: parsing, resolution at use, and redaction wherever output goes."""

from __future__ import annotations

import io
import json
import logging
import os
import secrets as pysecrets
import subprocess
import sys
import textwrap
import traceback
from pathlib import Path

import keyring
import pytest
from keyring.backend import KeyringBackend

from runbooklib import secrets as sec
from runbooklib.errors import InputError, SecretError
from runbooklib.secrets import (
    MASK,
    RedactingFilter,
    RedactingStream,
    install_redaction,
    is_secret_ref,
    parse_secret_ref,
    redact,
    redact_data,
    resolve_secret,
)


def sentinel() -> str:
    """A fresh value no test has registered before (the redactor is process-wide)."""
    return "S3ntinel-" + pysecrets.token_hex(8)


# -- parsing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "scheme", "target"),
    [
        ("env:SP_ADMIN_PASSWORD", "env", "SP_ADMIN_PASSWORD"),
        ("file:secrets/sp-a", "file", "secrets/sp-a"),
        ("file:/etc/runbook/app secret", "file", "/etc/runbook/app secret"),
        ("keyring:s2s-runbooks/spadmin", "keyring", "s2s-runbooks/spadmin"),
        ("prompt", "prompt", ""),
        ("  env:X  ", "env", "X"),
    ],
)
def test_parse_valid_references(text: str, scheme: str, target: str) -> None:
    ref = parse_secret_ref(text)
    assert (ref.scheme, ref.target) == (scheme, target)
    assert parse_secret_ref(str(ref)) == ref
    assert is_secret_ref(text)


def test_keyring_reference_splits_at_the_last_slash() -> None:
    ref = parse_secret_ref("keyring:https://contoso.example/app/spadmin")
    assert (ref.service, ref.username) == ("https://contoso.example/app", "spadmin")


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("env:", "env:NAME"),
        ("env:SP-A", "env:NAME"),
        ("file:", "file:PATH"),
        ("keyring:spadmin", "keyring:SERVICE/NAME"),
        ("keyring:/spadmin", "keyring:SERVICE/NAME"),
        ("Prompt please", "expected env:NAME, file:PATH, keyring:SERVICE/NAME or prompt"),
        ("", "expected env:NAME"),
    ],
)
def test_parse_invalid_references_say_what_is_expected(text: str, says: str) -> None:
    with pytest.raises(InputError) as info:
        parse_secret_ref(text, source="inv.yaml", field="servers.sp-a.password")
    assert says in str(info.value)
    assert info.value.field == "servers.sp-a.password"
    assert not is_secret_ref(text)


def test_a_pasted_password_is_not_echoed() -> None:
    with pytest.raises(InputError) as info:
        parse_secret_ref("Tr0ub4dor&3")
    assert "Tr0ub4dor" not in str(info.value)
    assert "11 characters" in str(info.value)


def test_non_text_reference() -> None:
    with pytest.raises(InputError, match="must be text"):
        parse_secret_ref(12345)


# -- resolution --------------------------------------------------------------------------------


def test_env_reference_resolves_and_registers(monkeypatch: pytest.MonkeyPatch) -> None:
    value = sentinel()
    monkeypatch.setenv("RUNBOOK_TEST_PW", value)
    assert resolve_secret("env:RUNBOOK_TEST_PW", purpose="the test") == value
    assert redact(f"password={value}") == f"password={MASK}"


def test_env_reference_is_read_at_use_not_cached(monkeypatch: pytest.MonkeyPatch) -> None:
    first, second = sentinel(), sentinel()
    monkeypatch.setenv("RUNBOOK_TEST_PW", first)
    assert resolve_secret("env:RUNBOOK_TEST_PW", purpose="x") == first
    monkeypatch.setenv("RUNBOOK_TEST_PW", second)
    assert resolve_secret("env:RUNBOOK_TEST_PW", purpose="x") == second


def test_unset_env_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("RUNBOOK_TEST_UNSET", raising=False)
    with pytest.raises(SecretError) as info:
        resolve_secret("env:RUNBOOK_TEST_UNSET", purpose="the password of LAB\\spadmin on sp-a")
    text = str(info.value)
    assert "RUNBOOK_TEST_UNSET" in text and "not set" in text and "sp-a" in text
    assert info.value.exit_code == 2


def test_empty_secret_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNBOOK_TEST_EMPTY", "")
    with pytest.raises(SecretError, match="is empty"):
        resolve_secret("env:RUNBOOK_TEST_EMPTY", purpose="x")


def test_file_reference_relative_to_base_dir_strips_one_newline(tmp_path: Path) -> None:
    value = sentinel()
    (tmp_path / "secrets").mkdir()
    (tmp_path / "secrets" / "sp-a").write_text(value + "\n")
    (tmp_path / "secrets" / "crlf").write_bytes((value + "\r\n").encode())
    (tmp_path / "secrets" / "two").write_text(value + "\n\n")
    assert resolve_secret("file:secrets/sp-a", purpose="x", base_dir=tmp_path) == value
    assert resolve_secret("file:secrets/crlf", purpose="x", base_dir=tmp_path) == value
    assert resolve_secret("file:secrets/two", purpose="x", base_dir=tmp_path) == value + "\n"
    assert resolve_secret(f"file:{tmp_path}/secrets/sp-a", purpose="x") == value
    assert redact(value) == MASK


def test_missing_secret_file_names_the_absolute_path(tmp_path: Path) -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret("file:secrets/none", purpose="the app secret", base_dir=tmp_path)
    assert str(tmp_path / "secrets" / "none") in str(info.value)
    with pytest.raises(SecretError, match="folder"):
        resolve_secret("file:.", purpose="x", base_dir=tmp_path)


def test_world_readable_secret_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "s"
    path.write_text(sentinel())
    path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="runbooklib.secrets"):
        resolve_secret("file:s", purpose="x", base_dir=tmp_path)
    assert any("chmod 600" in r.getMessage() for r in caplog.records)


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.store: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.store.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.store[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        self.store.pop((service, username), None)


@pytest.fixture
def memory_keyring():
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    try:
        yield backend
    finally:
        keyring.set_keyring(previous)


def test_keyring_reference(memory_keyring: MemoryKeyring) -> None:
    value = sentinel()
    memory_keyring.set_password("s2s-runbooks", "spadmin", value)
    assert resolve_secret("keyring:s2s-runbooks/spadmin", purpose="x") == value
    assert redact(value) == MASK
    with pytest.raises(SecretError) as info:
        resolve_secret("keyring:s2s-runbooks/nobody", purpose="x")
    assert "keyring set s2s-runbooks nobody" in str(info.value)


def test_no_keyring_backend() -> None:
    from keyring.backends import fail

    previous = keyring.get_keyring()
    keyring.set_keyring(fail.Keyring())
    try:
        with pytest.raises(SecretError, match="no keyring can be used"):
            resolve_secret("keyring:s2s-runbooks/spadmin", purpose="x")
    finally:
        keyring.set_keyring(previous)


def test_prompt_headless_says_what_to_use_instead() -> None:
    with pytest.raises(SecretError) as info:
        resolve_secret("prompt", purpose="the password of sp-a")
    assert "env:NAME, file:PATH or keyring:SERVICE/NAME" in str(info.value)


def test_prompt_interactive_without_a_terminal_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.StringIO(""))
    with pytest.raises(SecretError, match="cannot ask anyone"):
        resolve_secret("prompt", purpose="x", interactive=True)


def test_prompt_interactive_in_a_terminal(monkeypatch: pytest.MonkeyPatch) -> None:
    value = sentinel()
    asked: list[str] = []

    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.setattr(sys, "stdin", Tty())
    monkeypatch.setattr(sec.getpass, "getpass", lambda prompt: asked.append(prompt) or value)
    assert resolve_secret("prompt", purpose="the password of sp-a", interactive=True) == value
    assert asked == ["Secret for the password of sp-a: "]
    assert redact(value) == MASK


# -- redaction ---------------------------------------------------------------------------------


def test_redact_several_secrets_and_leaves_short_values() -> None:
    a, b = sentinel(), sentinel()
    sec.register_secret(a)
    sec.register_secret(b)
    sec.register_secret("abc")  # too short to redact without shredding output
    text = f"first {a}, second {b}, again {a}; abc stays"
    assert redact(text) == f"first {MASK}, second {MASK}, again {MASK}; abc stays"


def test_redact_masks_a_longer_secret_whole() -> None:
    short = sentinel()
    long = short + "-and-more"
    sec.register_secret(short)
    sec.register_secret(long)
    assert redact(f"[{long}]") == f"[{MASK}]"


def test_redact_catches_escaped_forms() -> None:
    value = 'pa"ss\\w0rd-' + pysecrets.token_hex(4)
    sec.register_secret(value)
    assert value not in redact(repr({"password": value}))
    assert 'pa"ss' not in redact(json.dumps({"password": value}))
    assert "ss\\\\w0rd" not in redact(repr({"password": value}))


def test_redact_catches_url_encoded_forms() -> None:
    from urllib.parse import urlencode

    value = "a+b/c=d~" + pysecrets.token_hex(4)
    sec.register_secret(value)
    body = urlencode({"client_id": "x", "client_secret": value})
    assert redact(body) == f"client_id=x&client_secret={MASK}"


def test_redact_data_walks_containers() -> None:
    value = sentinel()
    sec.register_secret(value)
    data = {"a": [value, ("x", value)], value: 1}
    assert redact_data(data) == {"a": [MASK, ("x", MASK)], MASK: 1}


def test_redacting_stream_scrubs_print() -> None:
    value = sentinel()
    sec.register_secret(value)
    out = io.StringIO()
    stream = RedactingStream(out)
    print("the password is", value, file=stream)
    stream.writelines([value, "\n"])
    stream.flush()
    assert value not in out.getvalue()
    assert out.getvalue() == f"the password is {MASK}\n{MASK}\n"


def test_redacting_filter_scrubs_message_and_args() -> None:
    value = sentinel()
    sec.register_secret(value)
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(RedactingFilter())
    logger = logging.getLogger("runbooklib.tests.filter")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("connecting with %s", value)
        logger.warning(f"inline {value}")
        logger.warning("dict %(pw)s", {"pw": value})
    finally:
        logger.removeHandler(handler)
    assert value not in out.getvalue()
    assert out.getvalue().count(MASK) == 3


def test_install_redaction_covers_logging_and_tracebacks() -> None:
    install_redaction(streams=False)
    install_redaction(streams=False)  # idempotent
    value = sentinel()
    sec.register_secret(value)

    # A handler added after installation, on a child logger: the record factory still scrubs.
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("runbooklib.tests.install")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.error("token %s", value)
        try:
            raise RuntimeError(f"login failed for password {value}")
        except RuntimeError:
            logger.exception("while connecting")
    finally:
        logger.removeHandler(handler)
    logged = out.getvalue()
    assert value not in logged
    assert "RuntimeError: login failed for password ********" in logged

    try:
        raise ValueError(f"bad {value}")
    except ValueError as exc:
        formatted = traceback.format_exc()
        only = "".join(traceback.format_exception_only(type(exc), exc))
    assert value not in formatted and value not in only
    assert f"ValueError: bad {MASK}" in formatted


SCRIPT = textwrap.dedent(
    """
    import logging, os, sys, threading
    from runbooklib.secrets import install_redaction, resolve_secret
    install_redaction()
    logging.basicConfig(level=logging.INFO)
    env = resolve_secret("env:RUNBOOK_SENTINEL", purpose="the test")
    fil = resolve_secret("file:sentinel.txt", purpose="the test", base_dir=sys.argv[1])
    print("printed", env, fil)
    sys.stderr.write("stderr " + env + "\\n")
    logging.getLogger("x").info("logged %s %s", env, fil)
    t = threading.Thread(target=lambda: (_ for _ in ()).throw(RuntimeError("thread " + env)))
    t.start(); t.join()
    raise RuntimeError("raised " + env + " " + fil)
    """
)


def test_a_script_that_prints_logs_and_raises_leaks_nothing(tmp_path: Path) -> None:
    env_value, file_value = sentinel(), sentinel()
    (tmp_path / "sentinel.txt").write_text(file_value + "\n")
    (tmp_path / "script.py").write_text(SCRIPT)
    proc = subprocess.run(
        [sys.executable, str(tmp_path / "script.py"), str(tmp_path)],
        env={**os.environ, "RUNBOOK_SENTINEL": env_value},
        capture_output=True,
        text=True,
        timeout=60,
    )
    everything = proc.stdout + proc.stderr
    assert proc.returncode == 1
    assert f"printed {MASK} {MASK}" in proc.stdout
    for marker in ("stderr ********", "logged ******** ********", "thread ********",
                   "RuntimeError: raised ******** ********"):
        assert marker in proc.stderr, proc.stderr
    assert env_value not in everything and file_value not in everything


NOTEBOOK_CELLS = [
    # parameters: references only
    'inventory_dir = ""',
    "import logging, sys\n"
    "from runbooklib.secrets import install_redaction, resolve_secret\n"
    "install_redaction()\n"
    "logging.basicConfig(level=logging.INFO, stream=sys.stderr, force=True)\n"
    'env_pw = resolve_secret("env:RUNBOOK_SENTINEL", purpose="the notebook test")\n'
    'file_pw = resolve_secret("file:sentinel.txt", purpose="the notebook test", base_dir=inventory_dir)',
    'print("printed", env_pw, file_pw)',
    'logging.getLogger("runbook").warning("logged %s %s", env_pw, file_pw)',
    "from IPython.display import display, HTML, Markdown\n"
    'display(HTML(f"<b>{env_pw}</b>")); display(Markdown(file_pw)); display({"pw": env_pw})',
    "{'result': env_pw, 'other': file_pw}",
    "import scrapbook as sb\nsb.glue('leak', {'pw': env_pw})",
    # A headless run cannot answer a prompt, even when the code allows one.
    "from runbooklib.errors import SecretError\n"
    "try:\n"
    '    resolve_secret("prompt", purpose="the notebook test", interactive=True)\n'
    "except SecretError as exc:\n"
    '    print("prompt refused:", exc.message)',
    'raise RuntimeError(f"raised with {env_pw} and {file_pw}")',
]


@pytest.mark.slow
def test_a_notebook_that_prints_logs_displays_and_raises_leaks_nothing(tmp_path: Path) -> None:
    nbformat = pytest.importorskip("nbformat")
    papermill = pytest.importorskip("papermill")

    env_value, file_value = sentinel(), sentinel()
    (tmp_path / "sentinel.txt").write_text(file_value + "\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_code_cell(src) for src in NOTEBOOK_CELLS]
    nb.cells[0].metadata["tags"] = ["parameters"]
    source, executed = tmp_path / "in.ipynb", tmp_path / "out.ipynb"
    nbformat.write(nb, source)

    old = os.environ.get("RUNBOOK_SENTINEL")
    os.environ["RUNBOOK_SENTINEL"] = env_value  # the kernel inherits this process's environment
    try:
        with pytest.raises(papermill.PapermillExecutionError) as info:
            papermill.execute_notebook(
                str(source), str(executed), parameters={"inventory_dir": str(tmp_path)},
                kernel_name="python3", progress_bar=False, cwd=str(tmp_path),
            )
    finally:
        if old is None:
            del os.environ["RUNBOOK_SENTINEL"]
        else:
            os.environ["RUNBOOK_SENTINEL"] = old

    raw = executed.read_bytes()
    assert env_value.encode() not in raw and file_value.encode() not in raw
    text = raw.decode()
    # The outputs are there, masked: the hooks scrubbed them rather than swallowing them.
    assert "printed ******** ********" in text
    assert "logged ******** ********" in text
    assert "<b>********</b>" in text
    assert "raised with ******** and ********" in text
    assert "prompt refused: the secret for the notebook test is set to 'prompt'" in text
    assert "RuntimeError" in info.value.ename
    assert env_value not in str(info.value)


def test_public_names_are_sorted_and_exist() -> None:
    import runbooklib.secrets as module

    assert module.__all__ == sorted(module.__all__)
    assert all(hasattr(module, name) for name in module.__all__)
