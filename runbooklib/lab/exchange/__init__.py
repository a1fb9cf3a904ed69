"""The lab's Exchange server (``exchange``) and its organization.

=====================  ==========================================================================
:mod:`.server`         :class:`ExchangeServer`: the command table, S2S tokens out and in
:mod:`.state`          the organization's definition, initial state, :class:`~.state.ExchangeStore`
:mod:`.organization`   what the server does: realm, metadata, downloads, minting, judging tokens
:mod:`.cmdlets`        one handler per Exchange cmdlet and the table that registers them
:mod:`.connectivity`   Test-OAuthConnectivity's real call to its target
:mod:`.web`            ``/autodiscover/metadata/json/1`` and EWS (``/ews/exchange.asmx``)
:mod:`.texts`          every Exchange text and unconfirmed choice, tagged [C] / [U]
:mod:`.product`        how the estate starts, resets and lists the server
=====================  ==========================================================================

Remote PowerShell is Exchange's: ``Microsoft.Exchange`` at ``/PowerShell``, a no-language
runspace — a pipeline of cmdlets with parameters runs, any script text (a template too) is
refused with PowerShell's ``ScriptsNotAllowed`` parse error.

Exchange as a token receiver (for another lab server's test cmdlet, e.g. Skype for Business's
Test-CsExStorageConnectivity): POST or GET ``<exchange web_url>/ews/exchange.asmx`` with
``Authorization: Bearer <token>``, or in the same process call
:meth:`ExchangeServer.judge(token) <ExchangeServer.judge>`. A token is accepted only when

* its ``iss`` (the actor token's, for a user token) is ``<ApplicationIdentifier>@<Realm>`` of an
  *enabled* partner application created with ``-AuthMetadataUrl`` (``unknown_issuer`` /
  ``application_disabled``);
* the certificate that application's metadata published — when it was created, or at its last
  ``Set-PartnerApplication -RefreshAuthMetadata`` — signed it (``unknown_x5t`` / ``bad_signature``);
* its audience is ``00000002-0000-0ff1-ce00-000000000000/<host>@<realm>`` with ``<host>`` one of
  :meth:`ExchangeServer.public_names` (or the Host the request came to) and ``<realm>`` the
  organization's (:attr:`ExchangeServer.realm`, the default accepted domain ``contoso.lab``);
* a user token names a user SID of the organization (``user_not_found``).

Refused: 401 with ``x-ms-diagnostics`` and ``X-Lab-S2S-Reason`` (the reason above); accepted:
200 with ``{"Issuer", "Application", "User"}``.

Exchange as a token issuer: :meth:`ExchangeServer.s2s_token` signs with the current Auth
certificate (Get-AuthConfig's CurrentCertificateThumbprint), ``iss`` = ``nameid`` =
:attr:`ExchangeServer.issuer`; a SharePoint farm accepts it through an issuer registered from
``/autodiscover/metadata/json/1``.
"""

from .server import ExchangeServer
from .state import ExchangeDefinition

__all__ = ["ExchangeDefinition", "ExchangeServer"]
