"""The lab's Office Online Server farm (``oos-1``, ``oos-2``).

=====================  ==========================================================================
:mod:`.server`         :class:`OosServer`: one member, its command table, S2S token minting
:mod:`.state`          the farm definition, its initial state, :class:`~.state.OosStore`
:mod:`.machine`        what a member does (certificate stores, key ACLs, farm settings, IIS)
:mod:`.cmdlets`        one handler per OfficeWebApps cmdlet and the table that registers them
:mod:`.templates`      one handler per script template (``runbooklib/templates/oos``)
:mod:`.texts`          every Office Online Server text and unconfirmed choice, tagged [C] / [U]
:mod:`.product`        how the estate starts, resets and lists the members
=====================  ==========================================================================
"""

from .server import OosServer, S2SUnavailable
from .state import OosFarmDefinition, OosMachineDefinition

__all__ = ["OosFarmDefinition", "OosMachineDefinition", "OosServer", "S2SUnavailable"]
