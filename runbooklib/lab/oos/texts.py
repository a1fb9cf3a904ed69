"""What the simulated Office Online Server says: module, type names, settings and error texts.

Each entry carries a tag from /work/shared/design/oos-commands.md (and s2s-facts.md):

* ``[C]`` confirmed from product documentation, product scripts or a capture;
* ``[U]`` unconfirmed: our best guess, kept here on purpose. Change it here, nowhere else.
"""

from __future__ import annotations

from ..powershell import prompt_refused

# ---------------------------------------------------------------------------------------------
# Well-known identities                                                                    [C]
# "Microsoft Office Web Apps Service": OOS signs its S2S tokens as this first-party app, in one
# fixed realm for SharePoint and one for SQL Server.
OOS_APP_ID = "67e3df25-268a-4324-a550-0de1c7f97287"
SHAREPOINT_REALM = "bd2372e4-0a11-495c-9541-8377c6def195"
SQL_REALM = "ffab2d74-c6ae-4375-819a-8555d49b699a"
SHAREPOINT_ISSUER = f"{OOS_APP_ID}@{SHAREPOINT_REALM}"
SQL_ISSUER = f"{OOS_APP_ID}@{SQL_REALM}"
SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"

# ---------------------------------------------------------------------------------------------
# The module and its objects
MODULE_NAME = "OfficeWebApps"                                          # [C]
MODULE_VERSION = "16.0.10338.20039"                                    # [U] an OOS build of 2019
T_FARM = ("Microsoft.Office.Web.Apps.Administration.OfficeWebAppsFarm", "System.Object")        # [U]
T_MACHINE = ("Microsoft.Office.Web.Apps.Administration.OfficeWebAppsMachine", "System.Object")  # [U]
T_PSCUSTOMOBJECT = ("System.Management.Automation.PSCustomObject", "System.Object")            # [C]
CMDLET_EXCEPTION = "System.InvalidOperationException"                  # [U]

# [C] On a server outside a farm, Get-OfficeWebAppsFarm/Machine throw this (DSC-MACHINE).
NOT_IN_FARM = "It does not appear that this machine is part of an Office Online Server farm."

# [C] The restart warning after a restart-class setting (NETDORK).
def settings_changed_warning(names: list[str]) -> str:
    return (f"The following settings have been changed: {', '.join(names)}. For this to take effect, "
            "every machine in the farm must be restarted.")


# [C] Set-OfficeWebAppsFarm's switches whose change needs every machine restarted (SETFARM-REF;
# S2S-DOC runs iisreset after AllowOutboundHttp and AllowHttpSecureStoreConnections). [U] that
# S2SCertificateName needs a restart too: the doc shows none; the lab asks for one, to be safe.
RESTART_SETTINGS = ("S2SCertificateName", "AllowOutboundHttp", "AllowHttpSecureStoreConnections")

# [U] How Set-OfficeWebAppsFarm fails in a remote, non-interactive host without -Force: the
# ShouldContinue prompt cannot be shown.
def force_needed(setting: str) -> str:
    return prompt_refused(f"Changing {setting} while the farm is in operation will lead to failed requests if it "
                          "is not the same on every machine in the farm. Continue with this operation?")


# ---------------------------------------------------------------------------------------------
# Certificates (PKI module, Cert: provider)
# [U] Import-PfxCertificate with the wrong password (the Windows text for NTE_BAD_DATA on a PFX).
PFX_WRONG_PASSWORD = ("The PFX file you are trying to import requires either a different password or membership "
                      "in an Active Directory principal to which it is protected.")
PFX_EXCEPTION = "System.ComponentModel.Win32Exception"                 # [U]
PFX_ERROR_ID = "System.Security.Cryptography.CryptographicException,Microsoft.CertificateServices.Commands.ImportPfxCertificate"  # [U]

# [C] Machine key folders (KEYSTORE-DOC): CNG keys and legacy CryptoAPI (CSP) keys live apart.
CNG_KEY_FOLDER = r"C:\ProgramData\Microsoft\Crypto\Keys"
CSP_KEY_FOLDER = r"C:\ProgramData\Microsoft\Crypto\RSA\MachineKeys"
KEY_FOLDERS = {"cng": CNG_KEY_FOLDER, "csp": CSP_KEY_FOLDER}
# [C] Who may read a machine key after import (default ACL of the folders).
DEFAULT_KEY_ACL = ("BUILTIN\\Administrators", "NT AUTHORITY\\SYSTEM")
NETWORK_SERVICE = "NT AUTHORITY\\NETWORK SERVICE"                      # [C] S-1-5-20
STORES = ("My", "Root")                                                # [C] LocalMachine\My, \Root


def certificate_not_found(thumbprint: str, store: str) -> str:
    """[U] Get-Item Cert:\\LocalMachine\\<store>\\<thumbprint> under ErrorAction Stop."""
    return f"Cannot find path 'Cert:\\LocalMachine\\{store}\\{thumbprint}' because it does not exist."


def no_private_key(thumbprint: str) -> str:
    """[U] What the grant template throws for a certificate without a private key."""
    return f"The certificate {thumbprint} in LocalMachine\\My has no private key to grant access to."


# [C] iisreset's output (community transcripts, every Windows Server since 2008).
IISRESET_OUTPUT = ("Attempting stop...", "Internet services successfully stopped",
                   "Attempting start...", "Internet services successfully restarted")

# [C-community] Where OOS keeps its farm settings; the restart check compares its write time with
# the start of IIS. [U] that this is how a restart is best observed.
SETTINGS_FILE = r"C:\ProgramData\Microsoft\OfficeWebApps\Data\FarmState\settings.xml"

# [U] What an S2S token from an OOS server carries: it speaks for itself (nameid = issuer) and is
# addressed to SharePoint at the farm's host in the farm's realm.
TOKEN_LIFETIME = 3600
