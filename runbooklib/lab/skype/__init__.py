"""The lab's Skype for Business Server pool (front ends ``skype-fe1``, ``skype-fe2``).

=====================  ==========================================================================
:mod:`.server`         :class:`SkypeFrontEnd`: one front end, its command table, web routes, controls
:mod:`.state`          the pool definition, its initial state, :class:`~.state.SkypeStore`
:mod:`.frontend`       what a front end does (certificates, OAuth settings, partner metadata,
                       the tokens it signs and judges, the Storage Service's call to Exchange)
:mod:`.cmdlets`        one handler per SkypeForBusiness cmdlet and the table that registers them
:mod:`.templates`      one handler per script template (``runbooklib/templates/skype``)
:mod:`.web`            ``/metadata/json/1`` and the inbound S2S token check
:mod:`.texts`          every Skype for Business text and unconfirmed choice, tagged [C] / [U]
:mod:`.product`        how the estate starts, resets and lists the front ends
=====================  ==========================================================================

Test-CsExStorageConnectivity calls Exchange Web Services at the host of the pool's
ExchangeAutodiscoverUrl (``https://<host>/EWS/Exchange.asmx``, POST) with a Skype-signed
app-only actor token ``00000004-…@<pool realm>`` whose audience is
``00000002-…/<host>@<Exchange's realm>`` (the realm its Exchange partner application read from
Exchange's metadata); an answer other than 200 fails the test with the status Exchange gave.
"""

from .server import SkypeFrontEnd
from .state import FrontEndDefinition, PoolDefinition

__all__ = ["FrontEndDefinition", "PoolDefinition", "SkypeFrontEnd"]
