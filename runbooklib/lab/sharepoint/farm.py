"""A simulated SharePoint Server farm over its state file: cmdlets and templates over PowerShell
remoting, its S2S web endpoints, and persisted state.

::

    farm = SharePointFarm.open(lab_dir / "sp-a.json", FarmDefinition.preset("sp-a"),
                               ca_bundle=lab_dir / "ca.pem")
    WinRMEndpoint(server_name="sp-a", commands=farm.commands, accounts=…).mount(server)
    farm.mount_web(server)        # /_layouts/15/metadata/json/1[/rootcertificate], /_vti_bin/client.svc

The farm's state survives a restart (``open`` on an existing file loads it) and ``reset()``
brings back the farm as it was first created. ``sts_key_pair()`` gives the STS signing key so
tests can mint tokens as the farm would.
"""

from __future__ import annotations

import base64
import copy
import logging
import uuid
from pathlib import Path
from typing import Any, Iterable

from ..http import LabServer
from ..pki import KeyPair
from ..windows import register_computer_domain
from ..winrm.api import CommandTable
from . import objects as O
from . import texts as T
from .cmdlets import register_cmdlets
from .operations import FarmOperations
from .state import (
    AddinIssuerDefinition,
    FarmDefinition,
    FarmStore,
    WebAppDefinition,
    key_pair_from_state,
    new_sts_certificate,
)
from .templates import register_templates
from .web import METADATA_PATH, REALM_DISCOVERY_PATH, ROOT_CERTIFICATE_PATH, FarmWeb, public_hosts

__all__ = [
    "AddinIssuerDefinition",
    "FarmDefinition",
    "METADATA_PATH",
    "REALM_DISCOVERY_PATH",
    "ROOT_CERTIFICATE_PATH",
    "SharePointFarm",
    "WebAppDefinition",
]

log = logging.getLogger(__name__)

class SharePointFarm:
    """One simulated farm over its state file."""

    def __init__(self, store: FarmStore, *, ca_bundle: Path | None, metadata_timeout: float) -> None:
        self._store = store
        self._ops = FarmOperations(store, ca_bundle=ca_bundle, metadata_timeout=metadata_timeout)
        self.commands = CommandTable()
        register_cmdlets(self.commands, self._ops)
        register_templates(self.commands, self._ops)
        register_computer_domain(self.commands, self._computer_domain)

    @classmethod
    def open(cls, state_path: Path, definition: FarmDefinition | None = None, *,
             name: str | None = None, version: str | None = None, public_host: str | None = None,
             web_apps: Iterable[WebAppDefinition] | None = None,
             initial_issuers: Iterable[AddinIssuerDefinition] = (),
             ca_bundle: Path | None = None, metadata_timeout: float = 10.0) -> "SharePointFarm":
        """Load the farm kept at ``state_path``, or create it.

        The farm to create is ``definition``; or, by keywords, ``name`` with ``version``,
        ``public_host`` and ``web_apps`` (and optionally ``initial_issuers``); or ``name`` alone for
        a preset (``sp-a``, ``sp-b``). An existing state file wins over any of these.

        ``ca_bundle`` is what the farm trusts when it downloads a partner's metadata over HTTPS
        (a real farm uses the Windows certificate store); ``None`` means the system's defaults.
        """
        if definition is None and name is not None:
            if version is None and public_host is None and web_apps is None:
                definition = FarmDefinition.preset(name)
            elif version is None or public_host is None or web_apps is None:
                raise ValueError("a new farm needs version, public_host and web_apps together (or a preset name)")
            else:
                definition = FarmDefinition(name, version, public_host, tuple(web_apps),  # type: ignore[arg-type]
                                            tuple(initial_issuers))
        store = FarmStore.open(Path(state_path), definition)
        return cls(store, ca_bundle=Path(ca_bundle) if ca_bundle else None, metadata_timeout=metadata_timeout)

    # --- identity ----------------------------------------------------------------------------
    @property
    def state_path(self) -> Path:
        return self._store.path

    def _get(self, key: str) -> Any:
        with self._store.view() as state:
            return state[key]

    @property
    def name(self) -> str:
        return self._get("name")

    @property
    def version(self) -> str:
        return self._get("version")

    @property
    def farm_id(self) -> str:
        return self._get("farm_id")

    @property
    def realm(self) -> str:
        return self._get("realm")

    @property
    def public_host(self) -> str:
        return self._get("public_host")

    def public_names(self) -> set[str]:
        """Every name the farm answers for (its web applications' and zones' hosts)."""
        with self._store.view() as state:
            return public_hosts(state)

    @property
    def name_identifier(self) -> str:
        """``00000003-0000-0ff1-ce00-000000000000@<realm>``: the issuer of the farm's tokens."""
        return f"{T.SHAREPOINT_PRINCIPAL_ID}@{self.realm}"

    # --- keys (lab only) ---------------------------------------------------------------------
    def sts_key_pair(self) -> KeyPair:
        """The STS signing certificate and its private key (RSA 2048)."""
        with self._store.view() as state:
            return key_pair_from_state(state["sts"]["signing"])

    def root_key_pair(self) -> KeyPair:
        """The farm's root authority (issuer of the STS certificate, the ``local`` root authority)."""
        with self._store.view() as state:
            return key_pair_from_state(state["sts"]["root"])

    def addin_key_pair(self, name: str) -> KeyPair:
        """The signing key of an initial provider-hosted add-in issuer, by its name."""
        with self._store.view() as state:
            return key_pair_from_state(state["addin_keys"][name])

    def replace_sts_certificate(self) -> KeyPair:
        """Lab control: give the farm a new STS certificate, as an administrator's rotation would."""
        root = self.root_key_pair()
        pair = new_sts_certificate(root)
        with self._store.change() as state:
            state["sts"]["signing"] = {"cert_pem": pair.cert_pem.decode(), "key_pem": pair.key_pem.decode()}
        return pair

    # --- lab controls ------------------------------------------------------------------------
    def _computer_domain(self) -> tuple[str, str, str]:
        with self._store.view() as state:
            forest = state.get("forest", "contoso.lab")
            return state["name"].upper(), forest, forest

    def join_forest(self, forest: str) -> None:
        """Lab control: the farm's servers are now joined to ``forest``."""
        with self._store.change() as state:
            state["forest"] = forest

    def set_user_profile_service(self, present: bool) -> None:
        """Lab control: give the farm a User Profile service application, or take it away."""
        with self._store.change() as state:
            state["service_applications"] = [a for a in state.get("service_applications", [])
                                             if a["type"] != T.USER_PROFILE_SERVICE["type"]]
            if present:
                state["service_applications"].append({"id": str(uuid.uuid4()), **T.USER_PROFILE_SERVICE})

    # --- state -------------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        """A copy of the current state (for tests and ``lab status``)."""
        with self._store.view() as state:
            return copy.deepcopy(state)

    def reset(self) -> None:
        """Restore the farm as it was first created (same ids, same certificates)."""
        self._store.reset()
        log.info("SharePoint farm %s reset", self.name)

    # --- web endpoints -----------------------------------------------------------------------
    def metadata_document(self) -> dict[str, Any]:
        """``/_layouts/15/metadata/json/1`` as the farm serves it now."""
        cert = self.sts_key_pair().certificate
        return self._document(O.cert_der(cert))

    def root_certificate_document(self) -> dict[str, Any]:
        """``…/json/1/rootcertificate``: the same document family, carrying the root certificate [U]."""
        return self._document(O.cert_der(self.root_key_pair().certificate))

    def _document(self, der: bytes) -> dict[str, Any]:
        # Key order and casing as captured from a real farm (see s2s-facts.md).
        return {
            "issuer": self.name_identifier,
            "keys": [{"keyValue": {"type": T.METADATA_KEY_TYPE, "value": base64.b64encode(der).decode()},
                      "usage": T.METADATA_KEY_USAGE}],
            "name": T.SHAREPOINT_PRINCIPAL_ID,
            "serviceName": T.SHAREPOINT_PRINCIPAL_ID,
        }

    def reach_out_through(self, server: LabServer) -> None:
        """Download what the farm downloads (partners' metadata) from ``server``'s network: its
        standing ``no-outbound`` fault leaves the farm unable to connect anywhere."""
        self._ops.outbound_blocked = lambda: server.faults.holds("no-outbound")

    def mount_web(self, server: LabServer) -> None:
        """Serve the farm's metadata, realm discovery and inbound S2S check (:mod:`.web`)."""
        FarmWeb(self, self._store.view).mount(server)
