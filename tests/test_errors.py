"""The exception tree administrators meet: exit codes, messages with what to do, notebook rendering."""

from __future__ import annotations

import runbooklib.errors as errors
from runbooklib.errors import InputError, RunbookError, SecretError, StepFailed


def test_public_names_are_sorted_and_all_runbook_errors():
    assert errors.__all__ == sorted(errors.__all__)
    for name in errors.__all__:
        assert issubclass(getattr(errors, name), RunbookError)


def test_input_errors_exit_2_and_name_where():
    error = SecretError("the environment variable is not set", source="inventory.yaml",
                        field="servers.sp-a.password", hint="export it first")
    assert error.exit_code == 2 and isinstance(error, InputError)
    assert str(error) == "inventory.yaml: servers.sp-a.password: the environment variable is not set\n  → export it first"
    assert StepFailed("x").exit_code == 1


def test_a_notebook_shows_the_message_and_what_to_do_without_a_stack():
    lines = StepFailed("step realm failed: Access denied.", hint="Run as a farm administrator.")._render_traceback_()
    text = "\n".join(lines)
    assert "StepFailed" in text and "Access denied." in text and "Run as a farm administrator." in text
    assert "Traceback" not in text and len(lines) == 2
