"""PowerShell session configurations: which runspace a WinRM shell request asks for.

A client names the configuration in the shell's resource URI,
``http://schemas.microsoft.com/powershell/<name>`` (pypsrp ``RunspacePool(configuration_name=…)``;
``New-PSSession -ConfigurationName``). A Windows server answers the configurations registered on
it (``Get-PSSessionConfiguration``): ``Microsoft.PowerShell`` on every server, and products add
their own — Exchange serves ``Microsoft.Exchange`` at ``http(s)://<server>/PowerShell``, a
runspace without the script language in which only commands with parameters run.

A lab endpoint serves the configurations it is given (default: ``Microsoft.PowerShell``, full
language); :func:`commands_only` is the Exchange kind. A name the endpoint does not serve is
refused with the WS-Management fault Windows answers (:func:`unknown_configuration`).
"""

from __future__ import annotations

from dataclasses import dataclass

from . import soap

__all__ = [
    "DEFAULT_CONFIGURATION",
    "RESOURCE_URI_PREFIX",
    "SessionConfiguration",
    "commands_only",
    "configuration_name",
    "full_language",
    "unknown_configuration",
]

RESOURCE_URI_PREFIX = "http://schemas.microsoft.com/powershell/"
DEFAULT_CONFIGURATION = "Microsoft.PowerShell"

# [C] the reason text, as captured from Windows PowerShell clients ("Connecting to remote server
# <host> failed with the following error message : " is the client's own prefix); the name shown
# is the configuration name, or the whole URI when the URI is not a PowerShell one.
# [U] the fault code (ERROR_WSMAN_INVALID_RESOURCE_URI) and subcode.
_UNKNOWN_CONFIGURATION_CODE = 2150858770
_UNKNOWN_CONFIGURATION_SUBCODE = "w:InvalidResourceURI"


@dataclass(frozen=True)
class SessionConfiguration:
    """One session configuration a server serves; ``language`` false: commands only (NoLanguage)."""

    name: str
    language: bool = True

    @property
    def resource_uri(self) -> str:
        return RESOURCE_URI_PREFIX + self.name


def full_language(name: str = DEFAULT_CONFIGURATION) -> SessionConfiguration:
    """A configuration with the full script language (``Microsoft.PowerShell``)."""
    return SessionConfiguration(name)


def commands_only(name: str) -> SessionConfiguration:
    """A configuration that runs commands with parameters and refuses any script (Exchange's)."""
    return SessionConfiguration(name, language=False)


def configuration_name(resource_uri: str) -> str:
    """The configuration a resource URI names: what follows the PowerShell prefix, else the URI."""
    uri = resource_uri.strip()
    if uri.lower().startswith(RESOURCE_URI_PREFIX):
        return uri[len(RESOURCE_URI_PREFIX):]
    return uri


def unknown_configuration(resource_uri: str, computer: str) -> soap.WSManFault:
    """The fault a shell request for a configuration the server does not have is refused with."""
    return soap.WSManFault(
        _UNKNOWN_CONFIGURATION_CODE,
        f"The WS-Management service cannot process the request. Cannot find the {configuration_name(resource_uri)} "
        f"session configuration in the WSMan: drive on the {computer} computer.",
        subcode=_UNKNOWN_CONFIGURATION_SUBCODE, value="s:Sender",
    )
