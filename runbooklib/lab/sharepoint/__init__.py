"""The lab's SharePoint Server farm (``sp-a``, ``sp-b``).

=====================  ==========================================================================
:mod:`.farm`           :class:`SharePointFarm` over its state file: keys, documents, mount points
:mod:`.state`          farm definitions and presets, the initial state, :class:`~.state.FarmStore`
:mod:`.operations`     what the farm does (lookups, changes, metadata download), for cmdlets and templates
:mod:`.cmdlets`        one handler per SharePoint cmdlet and the table that registers them
:mod:`.access`         the double hop: a runspace without delegated credentials cannot reach the farm
:mod:`.templates`      one handler per script template (``runbooklib/templates/sharepoint``)
:mod:`.objects`        the typed objects (pstypenames, properties) the handlers return
:mod:`.web`            metadata, realm discovery and the inbound S2S judge at the farm's web paths
:mod:`.addin`          a high-trust add-in's side: minting its tokens, calling a site
:mod:`.texts`          every SharePoint text and unconfirmed choice, tagged [C] / [U]
:mod:`.product`        how the estate starts, resets and lists the farms
=====================  ==========================================================================
"""

from .farm import (
    METADATA_PATH,
    REALM_DISCOVERY_PATH,
    ROOT_CERTIFICATE_PATH,
    AddinIssuerDefinition,
    FarmDefinition,
    SharePointFarm,
    WebAppDefinition,
)

__all__ = [
    "METADATA_PATH",
    "REALM_DISCOVERY_PATH",
    "ROOT_CERTIFICATE_PATH",
    "AddinIssuerDefinition",
    "FarmDefinition",
    "SharePointFarm",
    "WebAppDefinition",
]
