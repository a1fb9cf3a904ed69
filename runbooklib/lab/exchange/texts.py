"""What the simulated Exchange server says: type names, identities, roles and error texts.

Each entry carries a tag from /work/shared/design/skype-exchange-cmdlets.md:

* ``[C]`` confirmed from product documentation, product scripts or a capture;
* ``[U]`` unconfirmed: our best guess, kept here on purpose. Change it here, nowhere else.

PowerShell's own texts (binding, prompting, no-language refusals) are not here: they are in
:mod:`runbooklib.lab.powershell` and :mod:`runbooklib.lab.winrm`.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Well-known identities                                                                    [C]
EXCHANGE_PRINCIPAL_ID = "00000002-0000-0ff1-ce00-000000000000"
SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"
SESSION_CONFIGURATION = "Microsoft.Exchange"    # [C] at http(s)://<server>/PowerShell
POWERSHELL_PATH = "/PowerShell"
METADATA_PATH = "/autodiscover/metadata/json/1"  # [C] SFB-CFGPA
EWS_PATH = "/ews/exchange.asmx"                  # [C] the EWS endpoint Test-OAuthConnectivity names
AUTH_CERTIFICATE_SUBJECT = "Microsoft Exchange Server Auth Certificate"   # [C] SFB-PLAN
METADATA_NAME = "Exchange"                       # [C] EX-DECOMP: the document's "name"
EXCHANGE_ONLINE_APP = "Exchange Online"          # [C] EXSETUP: the app Setup creates, disabled on-prem
EXCHANGE_ONLINE_ACCOUNT = "Exchange Online-ApplicationAccount"  # [C] EXSETUP
EXCHANGE_VERSION = "0.20 (15.0.0.0)"             # [C] CAP-PA

# [C] EXSETUP: the roles Setup gives the Exchange Online application account.
EXCHANGE_ONLINE_ROLES = ("UserApplication", "ArchiveApplication", "LegalHoldApplication", "Mailbox Search",
                         "TeamMailboxLifecycleApplication", "MailboxSearchApplication", "MeetingGraphApplication")
# The management roles the lab knows (CEPA and EXSETUP assign these; an administrator's own: [U]).
ROLES = EXCHANGE_ONLINE_ROLES + ("Legal Hold", "Organization Management", "Mail Recipients")

# ---------------------------------------------------------------------------------------------
# Type names of what the cmdlets write (the client sees "Deserialized." prepended)        [U]
_CONFIG = "Microsoft.Exchange.Data.Directory.SystemConfiguration"
T_PARTNER_APPLICATION = (f"{_CONFIG}.PartnerApplication", "Microsoft.Exchange.Data.Directory.ADConfigurationObject",
                         "Microsoft.Exchange.Data.Directory.ADObject", "System.Object")  # [C] namespace (API ref)
T_AUTH_SERVER = (f"{_CONFIG}.AuthServer", "Microsoft.Exchange.Data.Directory.ADConfigurationObject", "System.Object")
T_AUTH_CONFIG = (f"{_CONFIG}.AuthConfig", "Microsoft.Exchange.Data.Directory.ADConfigurationObject", "System.Object")
T_ROLE_ASSIGNMENT = (f"{_CONFIG}.ExchangeRoleAssignmentPresentation", "System.Object")
T_USER = ("Microsoft.Exchange.Data.Directory.Management.User", "System.Object")
T_MAIL_USER = ("Microsoft.Exchange.Data.Directory.Management.MailUser", "System.Object")
T_VALIDATION_RESULT = ("Microsoft.Exchange.Security.OAuth.ValidationResultNode", "System.Object")  # [C] EX-DECOMP
VALIDATION_RESULT_ID = "Microsoft.Exchange.Security.OAuth.ValidationResultNodeId"               # [C] CAP-TOC

# ---------------------------------------------------------------------------------------------
# Errors
NOT_FOUND_EXCEPTION = "Microsoft.Exchange.Configuration.Tasks.ManagementObjectNotFoundException"  # [C]
ALREADY_EXISTS_EXCEPTION = "Microsoft.Exchange.Data.Directory.ADObjectAlreadyExistsException"    # [U]
TASK_EXCEPTION = "Microsoft.Exchange.Configuration.Tasks.TaskException"                          # [U]


def not_found(identity: str, domain_controller: str) -> str:
    """[C] An identity that resolves to nothing (community captures of Get-Mailbox and friends)."""
    return (f"The operation couldn't be performed because object '{identity}' couldn't be found on "
            f"'{domain_controller}'.")


def already_exists(distinguished_name: str) -> str:
    """[U] A New- cmdlet for a name that is taken (the directory refuses the object)."""
    return f"The object '{distinguished_name}' already exists."


def metadata_download_failed(url: str, reason: str) -> str:
    """[U] New/Set-PartnerApplication and New-AuthServer when the metadata cannot be read."""
    return f"The metadata document couldn't be downloaded from '{url}'. {reason}"


def metadata_invalid(url: str) -> str:
    """[U] What Exchange says of a document that is not auth metadata."""
    return f"The metadata document downloaded from '{url}' isn't a valid auth metadata document."


def partner_application_exists(issuer: str, name: str) -> str:
    """[U] Whether Exchange refuses a second application for the same ApplicationIdentifier and
    Realm is unconfirmed (skype-exchange-cmdlets.md §2); the lab refuses it so that a runbook that
    creates one on every run (as Configure-EnterprisePartnerApplication.ps1 does) fails in the lab."""
    return (f"A partner application for '{issuer}' already exists: '{name}'. Use Set-PartnerApplication to "
            "change it, or Remove-PartnerApplication first.")


# ---------------------------------------------------------------------------------------------
# Test-OAuthConnectivity                                                          [C] EX-HYB, CAP-TOC
TEST_TASKS = {"ews": "Checking EWS API Call Under Oauth", "autod": "Checking Autodiscover API Call Under Oauth",
              "generic": "Checking Generic API Call Under Oauth"}  # [C] EWS; [U] the other two
SERVICES = ("EWS", "AutoD", "Generic")
SERVICE_ENUM = "Microsoft.Exchange.Management.SystemConfigurationTasks.ModServiceType"  # [U]


def web_status(status: int, reason: str) -> str:
    """[C] .NET's WebException text for an HTTP error status."""
    return f"The remote server returned an error: ({status}) {reason}."


# [C] EWS's refusal of a bearer token: 401 with an x-ms-diagnostics header of this shape
# (CAP-TOC: 2000005;reason="…";error_category="invalid_user"); [U] the codes per reason.
EWS_DIAGNOSTIC_CODES = {
    "no_token": 2000000,
    "malformed": 2000001,
    "unknown_issuer": 2000001,
    "wrong_issuer": 2000001,
    "unknown_x5t": 2000002,
    "bad_signature": 2000002,
    "unsupported_alg": 2000002,
    "expired": 2000003,
    "not_yet_valid": 2000003,
    "wrong_audience": 2000004,
    "realm_mismatch": 2000004,
    "application_disabled": 2000008,
    "unsigned_without_actor": 2000001,
    "not_trusted_for_delegation": 2000001,
    "user_not_found": 2000005,
}
EWS_ERROR_CATEGORIES = {"user_not_found": "invalid_user", "wrong_audience": "invalid_resource",
                        "realm_mismatch": "invalid_resource"}  # [U] the rest: invalid_token
USER_NOT_FOUND = "The user specified by the user-context in the token does not exist."  # [C] CAP-TOC

TOKEN_LIFETIME = 3600   # [U] what Exchange gives its own S2S tokens
