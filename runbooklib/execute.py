"""Headless execution of a runbook notebook with papermill, and its archiving.

Everything here runs in the ``runbook`` process, not in the kernel: it validates the input
before anything is contacted (exit 2), executes the notebook with a kernel of this very Python
environment, then archives the executed notebook whatever the outcome — scrubbed of every
secret this process can resolve, as a second line of defence behind the kernel's own redaction.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import os
import sys
import tempfile
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from .errors import InputError
from .manifest import run_manifest
from .record import Archive, IndexEntry, read_notebook_scraps, scrap_output, utc_iso, utc_now
from .scrub import record_secrets, scrub_text
from .targets import Targets, run_targets

if TYPE_CHECKING:
    from .inventory import Inventory, ServerSpec

__all__ = ["RunOutcome", "RunRequest", "archive_guided_run", "execute_run", "kernel_name", "prepare_notebook"]

log = logging.getLogger(__name__)

Mode = Literal["apply", "plan"]
_KERNEL_PREFIX = "runbook-python"


@dataclass
class RunRequest:
    """A validated request to run one runbook."""

    notebook: Path
    scenario: str
    inventory: Path | None
    params: dict[str, Any]
    mode: Mode
    ticket: str = ""
    secret_values: list[str] = field(default_factory=list, repr=False)
    #: Hold the apply to the approved plan of its ticket (:mod:`runbooklib.approved_plan`).
    require_plan: bool = False

    @classmethod
    def from_cli(cls, *, target: str, inventory: str | None, params_file: str | None,
                 overrides: list[str], plan: bool, ticket: str, require_plan: bool = False) -> "RunRequest":
        """Resolve and validate everything; raises InputError (exit 2) before anything is contacted."""
        from .inventory import apply_overrides, load_inventory
        from .scenarios import find_scenario

        if require_plan:
            _check_require_plan(plan=plan, ticket=ticket)
        notebook, scenario = _resolve_target(target)
        params: dict[str, Any] = {}
        if params_file:
            params = _load_params_file(Path(params_file))
        params = apply_overrides(params, overrides)
        inventory_path = None
        inv = None
        if inventory:
            inventory_path = Path(inventory).resolve()
            inv = load_inventory(inventory_path)
        info = find_scenario(scenario)
        secrets: list[str] = []
        if info is not None:
            if inv is None:
                raise InputError("this scenario needs an inventory", field="--inventory",
                                 hint="Pass --inventory FILE (the lab writes one: .lab/inventory.yaml).")
            source = params_file or "parameters"
            targets = run_targets(info.validate(params, inv, source=source), inv, source=source)
            _check_supported(targets.servers)
            secrets = _check_secrets(inv, targets)
        elif inv is not None:
            # A notebook outside the registry declares no targets, so every secret must resolve.
            secrets = _check_secrets(inv, Targets.whole(inv))
        if require_plan and info is None:
            raise InputError(f"--require-plan needs a scenario of 'runbook scenarios'; {scenario} is not one",
                             field="--require-plan", hint="Run this notebook without --require-plan.")
        return cls(notebook, scenario, inventory_path, params, "plan" if plan else "apply", ticket, secrets,
                   require_plan)

    def papermill_parameters(self, run_context: dict[str, Any]) -> dict[str, Any]:
        return {
            **self.params,
            "inventory": str(self.inventory) if self.inventory else "",
            "mode": self.mode,
            "ticket": self.ticket,
            "run_context": run_context,
        }

    def parameters_sha256(self) -> str:
        canonical = json.dumps(self.params, sort_keys=True, default=str).encode()
        return hashlib.sha256(canonical).hexdigest()


def _check_require_plan(*, plan: bool, ticket: str) -> None:
    if plan:
        raise InputError("--require-plan holds an apply to its approved plan; a plan run has none",
                         field="--require-plan", hint="Leave out --plan, or leave out --require-plan to plan.")
    if not ticket.strip():
        raise InputError("--require-plan needs the change ticket whose approved plan the apply is held to",
                         field="--ticket", hint="Add --ticket ID: the ticket under which the plan was archived.")


def _resolve_target(target: str) -> tuple[Path, str]:
    from .scenarios import SCENARIOS, find_scenario

    if target.endswith(".ipynb") or os.sep in target:
        path = Path(target).resolve()
        if not path.is_file():
            raise InputError(f"notebook {target} does not exist", field="SCENARIO",
                             hint="Give a scenario name (runbook scenarios) or the path of a notebook.")
        try:
            meta = json.loads(path.read_text(encoding="utf-8")).get("metadata", {})
        except ValueError:
            raise InputError(f"{target} is not a notebook (invalid JSON)", field="SCENARIO") from None
        return path, (meta.get("runbook") or {}).get("scenario") or path.stem
    info = find_scenario(target)
    if info is None:
        names = ", ".join(sorted(SCENARIOS)) or "none yet"
        raise InputError(f"unknown scenario {target!r}", field="SCENARIO", hint=f"Known scenarios: {names}.")
    if not info.notebook.exists():
        raise InputError(f"scenario {target} has no notebook at {info.notebook}", field="SCENARIO",
                         hint="This scenario is not available in this version.")
    return info.notebook, info.name


def _load_params_file(path: Path) -> dict[str, Any]:
    from .inventory import read_yaml

    if not path.is_file():
        raise InputError("the parameters file does not exist", source=str(path),
                         hint="Check the path given to --params.")
    return read_yaml(path, what="parameters", allow_empty=True)


def _check_supported(servers: Iterable[ServerSpec]) -> None:
    from .remote import auth_support_problem

    for server in servers:
        if server.auth == "certificate":
            raise InputError("certificate authentication to remote PowerShell is not supported yet",
                             field=f"servers.{server.name}.auth",
                             hint="Use credssp (SharePoint cmdlets need the second hop), kerberos or ntlm.")
        problem = auth_support_problem(server.auth)
        if problem:
            raise InputError(problem, field=f"servers.{server.name}.auth")


def _check_secrets(inventory: Inventory, targets: Targets) -> list[str]:
    """Resolve the secret references of this run's targets, so a missing one fails now (exit 2).

    Other entries of the inventory are not touched: their secrets may live where only their own
    runs can reach. The values are returned only so that the archived record can be scrubbed.
    """
    from .secrets import resolve_secret

    base = inventory.base_dir
    values = [_resolve(resolve_secret, secret.reference, secret.where, base) for secret in targets.secrets()]
    return [v for v in values if v]


def _resolve(resolve_secret: Any, ref: str, purpose: str, base: Path | None) -> str:
    if str(ref).strip() == "prompt":
        # Only a guided run can prompt; a headless one must be given the secret another way.
        raise InputError("'prompt' cannot be answered in a headless run", field=purpose,
                         hint="Use env:NAME, file:PATH or keyring:SERVICE/NAME, or run the notebook in JupyterLab.")
    return resolve_secret(ref, purpose=purpose, interactive=False, base_dir=base)


# -- kernel ---------------------------------------------------------------------------------


def kernel_name() -> str:
    """A kernelspec that starts *this* interpreter, so a venv never meets NoSuchKernel."""
    digest = hashlib.sha256(sys.executable.encode()).hexdigest()[:10]
    name = f"{_KERNEL_PREFIX}-{digest}"
    root = Path(tempfile.gettempdir()) / f"runbook-jupyter-{os.getuid()}"
    spec_dir = root / "kernels" / name
    spec = {
        # ERROR level: the kernel's start-up warnings (e.g. about its loopback TCP transport) are
        # not the administrator's concern and would clutter the run's terminal output.
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}",
                 "--IPKernelApp.log_level=ERROR"],
        "display_name": f"runbook ({sys.executable})",
        "language": "python",
    }
    spec_file = spec_dir / "kernel.json"
    if not spec_file.exists() or json.loads(spec_file.read_text()) != spec:
        spec_dir.mkdir(parents=True, exist_ok=True)
        spec_file.write_text(json.dumps(spec))
    paths = os.environ.get("JUPYTER_PATH", "")
    if str(root) not in paths.split(os.pathsep):
        os.environ["JUPYTER_PATH"] = os.pathsep.join(p for p in (str(root), paths) if p)
    return name


# -- run ------------------------------------------------------------------------------------


@dataclass
class RunOutcome:
    """How a headless run ended, where its record is, and its exit code."""

    run_id: str
    scenario: str
    status: str
    changes: int | None
    record: Path
    entry: IndexEntry
    steps: list[dict[str, Any]]
    error: str | None = None

    @property
    def exit_code(self) -> int:
        if self.status == "interrupted":
            return 130  # stopped by Ctrl-C, as a shell reports a command SIGINT ended
        return 0 if self.status in ("succeeded", "planned") else 1

    def summary_text(self) -> str:
        lines = [f"{self.scenario}: {self.status.upper()} — run {self.run_id}, "
                 f"changes {self.changes if self.changes is not None else '-'}"]
        for step in self.steps:
            lines.append(f"  {step.get('status', '?'):<8} {step.get('id')}")
            if step.get("status") == "failed" and step.get("hint"):
                lines.append(f"           error: {step.get('error')}")
                lines.append(f"           next:  {step.get('hint')}")
        if self.error and not any(s.get("status") == "failed" for s in self.steps):
            lines.append(f"  error: {self.error}")
        lines.append(f"  record: {self.record}")
        return "\n".join(lines)


class _EchoHandler(logging.Handler):
    """Streams the kernel's output to the terminal as the run goes (secrets scrubbed)."""

    def emit(self, record: logging.LogRecord) -> None:
        from .secrets import redact

        message = record.getMessage()
        if message.startswith(("Executing notebook with kernel", "Input Notebook", "Output Notebook",
                               "Working directory", "Executing Cell", "Ending Cell")):
            return
        print(redact(message), file=sys.stderr, flush=True)


def execute_run(request: RunRequest, *, archive: Path, echo: bool = True,
                lock_wait: float | None = None) -> RunOutcome:
    """Execute the notebook headless and archive it, whatever happens in it.

    The run is journaled in the archive's staging area before the kernel starts, and papermill
    saves the executed notebook there after every cell: a run killed on the way is filed as
    ``interrupted`` by the next command (:func:`runbooklib.journal.file_interrupted_runs`).
    The operator's terminal cannot cut the run short (:mod:`runbooklib.terminal`).
    """
    import papermill
    from papermill.exceptions import PapermillExecutionError

    from .journal import StagedRun
    from .kernel_manager import QuietShutdownKernelManager
    from .terminal import detached_from_terminal

    run_id = uuid.uuid4().hex[:12]
    started = utc_now()
    run_context: dict[str, Any] = {
        "run_id": run_id,
        "started": utc_iso(started),
        "source_sha256": hashlib.sha256(request.notebook.read_bytes()).hexdigest(),
        "parameters_sha256": request.parameters_sha256(),
        # Target locks (and Graph's tenant write lock) live here, shared by every run that
        # archives to the same place.
        "lock_dir": str((archive / ".locks").resolve()),
    }
    if lock_wait is not None:
        run_context["lock_wait"] = lock_wait
    run_context.update(_plan_context(Archive(archive), request, guided=False))
    staged = StagedRun.begin(archive, run_id, {
        "scenario": request.scenario, "started": run_context["started"], "mode": request.mode,
        "ticket": request.ticket, "source": str(request.notebook), "source_sha256": run_context["source_sha256"],
        "parameters_sha256": run_context["parameters_sha256"],
        "inventory": str(request.inventory) if request.inventory else None, "parameters": request.params,
        "plan_run_id": (run_context.get("plan") or {}).get("run_id"),
    })
    run_context["stop_file"] = str(staged.stop_path)
    handler = _EchoHandler()
    pm_log = logging.getLogger("papermill")
    propagate = pm_log.propagate
    if echo:
        pm_log.addHandler(handler)
        pm_log.setLevel(logging.INFO)
        pm_log.propagate = False
    error: str | None = None
    try:
        with detached_from_terminal(on_interrupt=staged.request_stop):
            papermill.execute_notebook(
                str(request.notebook),
                str(staged.notebook_path),
                parameters=request.papermill_parameters(run_context),
                kernel_name=kernel_name(),
                log_output=echo,
                progress_bar=False,
                cwd=str(request.notebook.parent),
                # Saved after every cell and every few seconds inside one: what a crash leaves.
                request_save_on_cell_execute=True,
                autosave_cell_every=5,
                kernel_manager_class=QuietShutdownKernelManager,
            )
    except PapermillExecutionError as exc:
        error = f"{exc.ename}: {exc.evalue}"
    except Exception as exc:  # the kernel died or could not start: still leave a record
        error = f"{type(exc).__name__}: {exc}"
        log.debug("notebook execution failed", exc_info=True)
    finally:
        pm_log.removeHandler(handler)
        pm_log.propagate = propagate
    notebook = _load_output(staged.notebook_path, request.notebook)
    scraps = read_notebook_scraps(notebook)
    if "run" not in scraps:
        _append_failure_record(notebook, request, run_context, error)
        scraps = read_notebook_scraps(notebook)
    status = (scraps.get("run") or {}).get("status") or "failed"
    if error and status not in ("failed", "interrupted"):
        status = "failed"
    data = scrub_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", request.secret_values)
    entry = Archive(archive).add(data.encode("utf-8"), scenario=request.scenario, run_id=run_id,
                                 status=status, started=started)
    staged.discard()
    from .secrets import redact

    return RunOutcome(run_id, request.scenario, status, scraps.get("changes"), archive / entry.path, entry,
                      scraps.get("steps") or [], redact(error) if error else None)


def _plan_context(archive: Archive, request: RunRequest, *, guided: bool) -> dict[str, Any]:
    """What an apply run with a ticket needs to compare itself, step by step, with the ticket's plan.

    Without ``--require-plan``, anything that prevents the comparison becomes a warning of the
    run; with it, an :class:`InputError` (exit 2) before anything is contacted.
    """
    from .approved_plan import find_plan, require_plan

    if request.mode != "apply" or not request.ticket:
        return {}
    if request.require_plan:
        plan = require_plan(archive, request)
        return {"plan": plan.to_context(), "require_plan": "step-by-step" if guided else "whole-run"}
    found, why = find_plan(archive, request)
    if found is None:
        return {"plan_note": f"{why}: this apply run is not compared with a plan"}
    return {"plan": found.to_context()}


def _load_output(output: Path, source: Path) -> dict[str, Any]:
    try:
        return json.loads(output.read_text(encoding="utf-8"))
    except (OSError, ValueError):  # never written, or cut short by the kernel's death mid-save
        return json.loads(source.read_text(encoding="utf-8"))


def _append_failure_record(notebook: dict[str, Any], request: RunRequest, run_context: dict[str, Any],
                           error: str | None) -> None:
    """The run ended before the notebook could record itself: record it from outside."""
    from .secrets import redact

    reason = redact(error or "the notebook ended without recording its outcome")
    run = run_manifest(
        scenario=request.scenario, run_id=run_context["run_id"], status="failed",
        started=dt.datetime.fromisoformat(run_context["started"].replace("Z", "+00:00")), finished=utc_now(),
        ticket=request.ticket, mode=request.mode, notebook_sha256=run_context["source_sha256"],
        parameters_sha256=run_context["parameters_sha256"], inventory=request.inventory,
        parameters=request.params,
        # The words a run that stops outside a step records itself with (Run.fail).
        warnings=[f"run stopped: {reason}", "recorded by runbook run: the kernel did not record the run"],
        plan_run_id=(run_context.get("plan") or {}).get("run_id"),
    )
    notebook.setdefault("cells", []).append({
        "cell_type": "code",
        "execution_count": None,
        "id": f"runbook-failure-{run_context['run_id']}",
        "metadata": {"tags": ["runbook-failure-record"]},
        "source": "# Recorded by `runbook run`: the notebook stopped before it recorded its outcome.",
        "outputs": [
            {"output_type": "stream", "name": "stderr", "text": f"run failed: {reason}\n"},
            scrap_output("run", run),
            scrap_output("steps", []),
            scrap_output("changes", 0),
        ],
    })


def prepare_notebook(request: RunRequest, out: Path, *, archive: Path | None = None) -> Path:
    """Write the runbook with its parameters filled in, for a guided run in JupyterLab.

    An apply with a ticket carries its plan from ``archive``, so the guided run shows, step by
    step, whether it does what the plan said — as a headless run does. With ``--require-plan``
    each step's cell holds itself to that plan: a step that departs stops, changing nothing.
    """
    import papermill

    if request.require_plan and archive is None:
        raise InputError("--require-plan needs the archive that holds the ticket's plan", field="--archive")
    if out.exists():
        raise InputError(f"{out} already exists", field="--out", hint="Choose a new file name; nothing is overwritten.")
    # No run id here: each execution of the prepared notebook is its own run.
    run_context: dict[str, Any] = {"source_sha256": hashlib.sha256(request.notebook.read_bytes()).hexdigest(),
                                   "parameters_sha256": request.parameters_sha256()}
    if archive is not None and request.mode == "apply" and request.ticket:
        run_context.update(_plan_context(Archive(archive), request, guided=True))
        run_context["lock_dir"] = str((archive / ".locks").resolve())
    out.parent.mkdir(parents=True, exist_ok=True)
    papermill.execute_notebook(str(request.notebook), str(out), parameters=request.papermill_parameters(run_context),
                               prepare_only=True, kernel_name=kernel_name(), progress_bar=False)
    return out


def archive_guided_run(notebook_path: Path, archive: Path) -> IndexEntry:
    """Archive the notebook of a guided run (saved from JupyterLab) as that run's record.

    The notebook must carry the ``run`` scrap its run glued when it finished or failed; it is
    filed under the run's own id and start time, so one run is archived once. Like a headless
    record it is scrubbed of the secrets its targets' references resolve to on this machine —
    cell *sources* are not covered by the kernel's redaction.
    """
    try:
        notebook = json.loads(Path(notebook_path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"{notebook_path} does not exist", field="FILE.ipynb") from None
    except ValueError:
        raise InputError(f"{notebook_path} is not a notebook (invalid JSON)", field="FILE.ipynb") from None
    run = read_notebook_scraps(notebook).get("run")
    if not isinstance(run, dict) or not run.get("status") or not run.get("run_id"):
        raise InputError(f"{notebook_path} holds no finished run", field="FILE.ipynb",
                         hint="Run the notebook to its Summary cell (or until a step fails), save it, then archive it.")
    if not (run.get("sha256") or {}).get("notebook"):
        raise InputError(f"{notebook_path} was not prepared by 'runbook prepare'", field="FILE.ipynb",
                         hint="Guided runs start from 'runbook prepare SCENARIO … --out FILE.ipynb'.")
    secrets = record_secrets(notebook, str(run.get("scenario") or ""))
    text = scrub_text(json.dumps(notebook, indent=1, ensure_ascii=False) + "\n", secrets)
    started = dt.datetime.fromisoformat(str(run.get("started") or utc_iso(utc_now())).replace("Z", "+00:00"))
    return Archive(archive).add(text.encode("utf-8"), scenario=str(run.get("scenario") or "unknown"),
                                run_id=str(run["run_id"]), status=str(run["status"]), started=started)
