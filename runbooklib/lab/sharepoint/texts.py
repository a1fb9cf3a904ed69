"""What the simulated SharePoint farm says: type names, builds, error texts and formats.

PowerShell's own texts (binding, prompting) are in :mod:`runbooklib.lab.powershell`; the .NET
texts of a failed metadata download in :mod:`runbooklib.lab.metadata_download`.

Everything a real farm would show that the lab imitates lives here, so a better source can
correct it in one place. Each entry carries a tag from /work/shared/design/sharepoint-cmdlets.md:

* ``[C]`` confirmed from product documentation, product scripts or a capture;
* ``[U]`` unconfirmed: our best guess, kept here on purpose. Change it here, nowhere else.
"""

from __future__ import annotations

from ..powershell import AMBIGUOUS_PARAMETER_SET

# ---------------------------------------------------------------------------------------------
# Well-known identities                                                                    [C]
SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"
ACS_PRINCIPAL_ID = "00000001-0000-0000-c000-000000000000"
# Office Online Server signs for SharePoint and for SQL Server in two fixed realms of its own;
# a farm trusts them as certificate issuers with these registered names (oos-commands.md).   [C]
OOS_SHAREPOINT_ISSUER = "67e3df25-268a-4324-a550-0de1c7f97287@bd2372e4-0a11-495c-9541-8377c6def195"
OOS_SQL_ISSUER = "67e3df25-268a-4324-a550-0de1c7f97287@ffab2d74-c6ae-4375-819a-8555d49b699a"
# Workflow Manager's first-party principal id.                                                [U]
WORKFLOW_PRINCIPAL_ID = "00000005-0000-0000-c000-000000000000"
# Office Online Server's issuers: one first-party app id in two fixed realms (SharePoint's, SQL
# Server's), whatever the farm's realm (oos-commands.md §7).                                 [C]
OOS_FIXED_REALM_ISSUERS = frozenset({OOS_SHAREPOINT_ISSUER, OOS_SQL_ISSUER})

# ---------------------------------------------------------------------------------------------
# Builds Get-SPFarm reports per product version. [C] that these builds exist (SharePointDsc keeps
# stubs for them); [U] which release each one is.
BUILD_VERSIONS = {
    "2013": "15.0.4805.1000",
    "2016": "16.0.4456.1000",
    "2019": "16.0.10337.12109",
    "SE": "16.0.18526.20508",
}
CONFIG_DB_NAME = "SharePoint_Config"          # [U] usual default of New-SPConfigurationDatabase

# ---------------------------------------------------------------------------------------------
# Where the cmdlets come from. A remote session runs no profile, so nothing has loaded them: the
# SharePoint Management Shell only adds them through its own start-up script.
# [C] 2013, 2016 and 2019 register the snap-in Microsoft.SharePoint.PowerShell (loaded with
#     Add-PSSnapin); Subscription Edition ships the module SharePointServer (Import-Module), and
#     public loaders branch on the version because SE no longer ships the snap-in.
SNAPIN_NAME = "Microsoft.SharePoint.PowerShell"
SE_MODULE_NAME = "SharePointServer"
SNAPIN_DESCRIPTION = "Microsoft SharePoint Server PowerShell snap-in"    # [U]
SE_MODULE_DESCRIPTION = "SharePoint Server PowerShell module"           # [U]
# [U] Whether SE's module autoloads in a remote session (its folder on PSModulePath) is not
# confirmed. The lab is conservative: SharePoint cmdlets exist only after Import-Module, and the
# runbooks always import it. Set True only once a real SE farm shows Get-SPFarm working in a
# fresh remote session (the lab then still requires the import: it models no autoloading).
SE_MODULE_AUTOLOADS = False


def powershell_source(version: str) -> tuple[str, str]:
    """``(kind, name)`` of what brings the SharePoint cmdlets on ``version``: snap-in or module. [C]"""
    return ("module", SE_MODULE_NAME) if version == "SE" else ("snapin", SNAPIN_NAME)


def sharepoint_powershell_missing() -> str:
    """What the load-sharepoint-powershell template throws on a server with neither (ours)."""
    return (f"SharePoint PowerShell is not installed on this server: neither the snap-in {SNAPIN_NAME} "
            f"nor the module {SE_MODULE_NAME} was found. Run this on a server of the SharePoint farm.")
STS_MANAGER_NAME = "SecurityTokenServiceManager"   # [U]

# ---------------------------------------------------------------------------------------------
# The double hop. A remote session whose client did not delegate its credentials (NTLM, Kerberos
# without delegation) runs as the user on the farm server but cannot authenticate as the user to
# SQL Server, so the farm's configuration database is out of reach; CredSSP delegates them.
# [C] the warning the snap-in (and SE's module) writes while it loads in such a session, on the
#     warning stream; the load itself succeeds (SharePointDsc issue 659, Microsoft's
#     "PowerShell Remoting for SharePoint" blog).
# [C] the error every farm cmdlet then fails with: category InvalidData, exception
#     SPCmdletException, FullyQualifiedErrorId the cmdlet's class (captures in
#     brianlala/AutoSPUpdater issue 1 for Get-SPDiagnosticConfig and a remoting report for
#     Get-SPSite).
# [U] that the error is terminating (ThrowTerminatingError): captures show it alone, as a
#     terminating error shows. Then -ErrorAction SilentlyContinue does not hide it (PowerShell
#     applies -ErrorAction to non-terminating errors only [C]) and a script with
#     $ErrorActionPreference = 'Stop' ends there: the load template fails at its Get-SPFarm, after
#     the warning. The field review reads it the other way (SilentlyContinue hides it); the
#     runbooks recognise both the warning and the error, so either reading stops them.
# [U] which cmdlets stay unregistered ("Cmdlets with FeatureDependencyId"): the lab registers
#     all of them and fails each one, which is what a runbook sees either way.
LOCAL_FARM_NOT_ACCESSIBLE = "The local farm is not accessible. Cmdlets with FeatureDependencyId are not registered."
CANNOT_ACCESS_LOCAL_FARM = ("Cannot access the local farm. Verify that the local farm is properly configured, "
                            "currently available, and that you have the appropriate permissions to access the "
                            "database before trying again.")
CANNOT_ACCESS_LOCAL_FARM_CATEGORY = "InvalidData"
SP_CMDLET_EXCEPTION = "Microsoft.SharePoint.PowerShell.SPCmdletException"

# ---------------------------------------------------------------------------------------------
# .NET type names (pstypenames, most-derived first).
_PERSISTED = [
    "Microsoft.SharePoint.Administration.SPPersistedObject",
    "Microsoft.SharePoint.Administration.SPAutoSerializingObject",
    "System.Object",
]
T_FARM = ["Microsoft.SharePoint.Administration.SPFarm", *_PERSISTED]                      # [C]
T_WEB_APP = [                                                                              # [C]
    "Microsoft.SharePoint.Administration.SPWebApplication",
    "Microsoft.SharePoint.Administration.SPPersistedUpgradableObject",
    *_PERSISTED,
]
T_ALTERNATE_URL = ["Microsoft.SharePoint.Administration.SPAlternateUrl", "System.Object"]  # [C]
T_IIS_SETTINGS = ["Microsoft.SharePoint.Administration.SPIisSettings", *_PERSISTED]         # [C]
T_WINDOWS_PROVIDER = [                                                                     # [U]
    "Microsoft.SharePoint.Administration.SPWindowsAuthenticationProvider",
    "Microsoft.SharePoint.Administration.SPAuthenticationProvider",
    *_PERSISTED,
]
T_SITE = ["Microsoft.SharePoint.SPSite", "System.Object"]                                  # [C]
T_WEB = ["Microsoft.SharePoint.SPWeb", "Microsoft.SharePoint.SPSecurableObject", "System.Object"]  # [C]
T_STS_CONFIG = [                                                                           # [C]
    "Microsoft.SharePoint.Administration.Claims.SPSecurityTokenServiceManager",
    *_PERSISTED,
]
T_LOCAL_LOGIN_PROVIDER = [                                                                 # [C]
    "Microsoft.SharePoint.Administration.Claims.SPLocalLoginProvider",
    "Microsoft.SharePoint.Administration.Claims.SPLoginProviderBase",
    *_PERSISTED,
]
T_CERTIFICATE = [                                                                          # [C]
    "System.Security.Cryptography.X509Certificates.X509Certificate2",
    "System.Security.Cryptography.X509Certificates.X509Certificate",
    "System.Object",
]
T_APP_PRINCIPAL = ["Microsoft.SharePoint.SPAppPrincipal", "System.Object"]                 # [C]
T_SITE_APP_PRINCIPAL_INFO = ["Microsoft.SharePoint.SPSiteAppPrincipalInfo", "System.Object"]  # [C]
# There is no public class named SPTrustedSecurityTokenIssuer: the cmdlets return this one.  [C]
T_TRUSTED_STS = [
    "Microsoft.SharePoint.Administration.Claims.SPTrustedSecurityTokenService",
    "Microsoft.SharePoint.Administration.Claims.SPTrustedProviderBase",
    "Microsoft.SharePoint.Administration.Claims.SPLoginProviderBase",
    *_PERSISTED,
]
T_ROOT_AUTHORITY = ["Microsoft.SharePoint.Administration.SPTrustedRootAuthority", *_PERSISTED]  # [U] namespace
T_ROOT_AUTHORITY_MANAGER = "Microsoft.SharePoint.Administration.SPTrustedRootAuthorityManager"  # [U]
T_ACS_PROXY = [                                                                            # [C]
    "Microsoft.SharePoint.Administration.SPAzureAccessControlServiceApplicationProxy",
    "Microsoft.SharePoint.Administration.SPServiceApplicationProxy",
    *_PERSISTED,
]
T_PROXY_BASE = ["Microsoft.SharePoint.Administration.SPServiceApplicationProxy", *_PERSISTED]
T_PROXY_GROUP = ["Microsoft.SharePoint.Administration.SPServiceApplicationProxyGroup", *_PERSISTED]  # [C]
T_PSCUSTOMOBJECT = ["System.Management.Automation.PSCustomObject", "System.Object"]

# Service application proxies every lab farm starts with, all in the default group.      [U values]
INITIAL_PROXIES = [
    {
        "name": "App Management Service Application",
        "type": "Microsoft.SharePoint.AppManagement.AppManagementServiceApplicationProxy",
        "type_name": "App Management Service Application Proxy",
    },
    {
        "name": "Subscription Settings Service Application",
        "type": "Microsoft.SharePoint.SPSubscriptionSettingsServiceApplicationProxy",
        "type_name": "Microsoft SharePoint Foundation Subscription Settings Service Application Proxy",
    },
    {
        "name": "Search Service Application",
        "type": "Microsoft.Office.Server.Search.Administration.SearchServiceApplicationProxy",
        "type_name": "Search Service Application Proxy",
    },
]
ACS_PROXY_TYPE_NAME = "Azure Access Control Service Application Proxy"   # [U]

# The User Profile service application a farm may have (Get-SPServiceApplication).
# [C] S2S with Office Online Server needs one (S2S-DOC); [U] the type names below.
USER_PROFILE_SERVICE = {
    "name": "User Profile Service Application",
    "type": "Microsoft.Office.Server.Administration.UserProfileApplication",
    "type_name": "User Profile Service Application",
}
T_SERVICE_APPLICATION_BASE = ["Microsoft.SharePoint.Administration.SPServiceApplication", *_PERSISTED]  # [C]
DEFAULT_PROXY_GROUP_FRIENDLY_NAME = "[default]"                          # [U]

ZONES = ("Default", "Intranet", "Internet", "Custom", "Extranet")        # [C] SPUrlZone
T_ZONE_ENUM = "Microsoft.SharePoint.Administration.SPUrlZone"
PERMISSION_SCOPES = ("Site", "SiteCollection", "SiteSubscription")       # [C]
PERMISSION_RIGHTS = ("Read", "Write", "Manage", "FullControl")           # [C]
T_SCOPE_ENUM = "Microsoft.SharePoint.PowerShell.SPCmdletAppPrincipalPermissionScope"  # [U] namespace
T_RIGHT_ENUM = "Microsoft.SharePoint.PowerShell.SPCmdletAppPrincipalPermissionKind"   # [U] namespace
# What SPAppPrincipalPermissionsManager reports where nothing was granted.               [U]
NO_PERMISSION = "None"

# ---------------------------------------------------------------------------------------------
# Certificates the farm creates for itself.  [C] STS certificate in LocalMachine\SharePoint,
# issued by the farm's root authority; [U] the OU/O/C parts of the subjects.
STS_SUBJECT = {"CN": "SharePoint Security Token Service", "OU": "SharePoint", "O": "Microsoft", "C": "US"}
ROOT_SUBJECT = {"CN": "SharePoint Root Authority", "OU": "SharePoint", "O": "Microsoft", "C": "US"}
LOCAL_ROOT_AUTHORITY = "local"  # [U] that Get-SPTrustedRootAuthority always lists it

# Remoting drops RawData from certificates nested in another object (depth).               [U]
NESTED_CERTIFICATE_HAS_RAWDATA = False

# ToString() of objects (what the client shows and what binding errors quote).
def persisted_to_string(type_name: str, name: str) -> str:
    """SPPersistedObject.ToString(): ``SPFarm Name=SharePoint_Config``.                     [C]"""
    return f"{type_name.rsplit('.', 1)[-1]} Name={name}"


def site_to_string(url: str) -> str:
    return f"SPSite Url={url}"  # [C]


def web_to_string(url: str) -> str:
    return f"SPWeb Url={url}"  # [U]


# Encoded claim of an app principal.                                                       [U]
# Widely seen on "Site App Permissions" pages as i:0i.t|ms.sp.ext|<client id>@<realm>; no
# Microsoft reference documents the encoding.
def encoded_app_claim(name_identifier: str, *, internal: bool = False) -> str:
    """``ms.sp.ext`` for a provider-hosted (external) add-in, ``ms.sp.int`` for a SharePoint-hosted
    (internal) one.                                                                          [U]"""
    return f"i:0i.t|ms.sp.{'int' if internal else 'ext'}|{name_identifier}"


# ---------------------------------------------------------------------------------------------
# Server object-model calls the script templates make that sharepoint-cmdlets.md does NOT confirm.
# Each one is listed in Microsoft's SharePoint (2013) API reference on learn.microsoft.com
# (previous-versions/office/sharepoint-server), but no source we hold shows it used, and this
# project has never run it against a real farm: the lab answers it by our reading of that
# reference. Every template that calls one says UNCONFIRMED next to the call (a test checks).  [U]
UNCONFIRMED_SERVER_APIS: dict[str, str] = {
    "GetSiteAppPrincipals": (
        "SPWeb.GetSiteAppPrincipals() -> IEnumerable<SPSiteAppPrincipalInfo> (Id, DisplayName, "
        "EncodedIdentityClaim): the principals explicitly granted on, or having visited, the site "
        "collection (reference jj835457, jj819483). [U] which principals a real farm lists, e.g. "
        "whether a SiteSubscription-scoped grant shows on every site collection (the lab says yes)."),
    "DecodeClaim": (
        "SPClaimProviderManager.Local.DecodeClaim(<EncodedIdentityClaim>).Value, believed to be the app "
        "principal's NameIdentifier (<client id>@<realm>); templates fall back to the text after the "
        "last '|' of the encoded claim."),
    "GetAppPrincipalWebPermission": (
        "SPAppPrincipalPermissionsManager.GetAppPrincipalWebPermission(SPAppPrincipal) -> "
        "SPAppPrincipalPermissionKind: the explicit right on the web (reference jj171139)."),
    "GetAppPrincipalSitePermission": (
        "SPAppPrincipalPermissionsManager.GetAppPrincipalSitePermission(SPAppPrincipal) -> "
        "SPAppPrincipalPermissionKind: the explicit right on the site collection (reference jj172458)."),
}
# Confirmed in sharepoint-cmdlets.md §10 and preferred where they answer the question:
# SPAppPrincipalPermissionsManager.GetAppPrincipalSiteSubscriptionContentPermission and
# IsAppOnlyPolicyAllowed.                                                                    [C]


# ---------------------------------------------------------------------------------------------
# The farm's JSON metadata.  [C] json/1 (captured from SharePoint Subscription Edition).
# [U] rootcertificate: believed to be the same family of document carrying the root certificate.
METADATA_KEY_TYPE = "x509certificate"
METADATA_KEY_USAGE = "Signing"


def realm_challenge(realm: str, trusted_issuers: list[str]) -> str:
    """The Bearer challenge of /_vti_bin/client.svc. [C] realm, client_id; [U] trusted_issuers list."""
    issuers = ",".join(trusted_issuers)
    return f'Bearer realm="{realm}",client_id="{SHAREPOINT_PRINCIPAL_ID}",trusted_issuers="{issuers}"'


# ---------------------------------------------------------------------------------------------
# Error texts.
def fqid(cmdlet_class: str) -> str:
    """FullyQualifiedErrorId of a SharePoint cmdlet. [C] pattern; [U] each class name."""
    return f"Microsoft.SharePoint.PowerShell.{cmdlet_class}"


CMDLET_CLASSES = {  # [U] SPCmdlet<Verb><Noun> pattern
    "Get-SPFarm": "SPCmdletGetFarm",
    "Get-SPWebApplication": "SPCmdletGetWebApplication",
    "Get-SPAuthenticationProvider": "SPCmdletGetAuthenticationProvider",
    "Get-SPSite": "SPCmdletGetSite",
    "Get-SPSecurityTokenServiceConfig": "SPCmdletGetSecurityTokenServiceConfig",
    "Get-SPAuthenticationRealm": "SPCmdletGetAuthenticationRealm",
    "Set-SPAuthenticationRealm": "SPCmdletSetAuthenticationRealm",
    "Register-SPAppPrincipal": "SPCmdletRegisterAppPrincipal",
    "Get-SPAppPrincipal": "SPCmdletGetAppPrincipal",
    "Set-SPAppPrincipalPermission": "SPCmdletSetAppPrincipalPermission",
    "Get-SPServiceApplication": "SPCmdletGetServiceApplication",
    "Get-SPServiceApplicationProxy": "SPCmdletGetServiceApplicationProxy",
    "Remove-SPServiceApplicationProxy": "SPCmdletRemoveServiceApplicationProxy",
    "Get-SPServiceApplicationProxyGroup": "SPCmdletGetServiceApplicationProxyGroup",
    "Add-SPServiceApplicationProxyGroupMember": "SPCmdletAddServiceApplicationProxyGroupMember",
    "New-SPAzureAccessControlServiceApplicationProxy": "SPCmdletNewAzureAccessControlServiceApplicationProxy",
    "New-SPTrustedSecurityTokenIssuer": "SPCmdletNewSPTrustedSecurityTokenIssuer",
    "Get-SPTrustedSecurityTokenIssuer": "SPCmdletGetSPTrustedSecurityTokenIssuer",
    "Set-SPTrustedSecurityTokenIssuer": "SPCmdletSetSPTrustedSecurityTokenIssuer",
    "Remove-SPTrustedSecurityTokenIssuer": "SPCmdletRemoveSPTrustedSecurityTokenIssuer",
    "New-SPTrustedRootAuthority": "SPCmdletNewSPTrustedRootAuthority",
    "Get-SPTrustedRootAuthority": "SPCmdletGetSPTrustedRootAuthority",
    "Remove-SPTrustedRootAuthority": "SPCmdletRemoveSPTrustedRootAuthority",
    "Register-SPWorkflowService": "RegisterSPWorkflowService",
}
# Register-SPWorkflowService lives in another assembly: its FullyQualifiedErrorId starts
# Microsoft.SharePoint.WorkflowServices.PowerShell (seen in a published error record).          [C]
WORKFLOW_FQID_PREFIX = "Microsoft.SharePoint.WorkflowServices.PowerShell"

# Cmdlets whose ConfirmImpact makes them prompt in a default session.  [C] the issuer removal and
# proxy removal (scripts pass -Confirm:$false); [U] root authority removal. Set-SPAuthenticationRealm
# is run without -Confirm in Microsoft's hybrid procedure, so it is believed not to prompt. [U]
PROMPTING_CMDLETS = frozenset({
    "Remove-SPTrustedSecurityTokenIssuer",
    "Remove-SPTrustedRootAuthority",
    "Remove-SPServiceApplicationProxy",
})


# Set-SPTrustedSecurityTokenIssuer with neither -Certificate nor -MetadataEndPoint.              [U]
# Its help shows two parameter sets (ImportCertificateParameterSet, MetadataEndPointParameterSet),
# neither marked as the default, and every other parameter (-Identity, -RegisteredIssuerName,
# -IsTrustBroker, -Description) belongs to both: PowerShell is then believed unable to choose a set
# and to refuse binding with its generic text, so `-Identity X -RegisteredIssuerName Y` alone fails.
# Set to None to let such a call through (if a real farm proves it binds).
SET_ISSUER_WITHOUT_PARAMETER_SET: str | None = AMBIGUOUS_PARAMETER_SET

# -IsTrustBroker is a switch: a Set- call that omits it passes False. Believed (pessimistically) that
# the cmdlet then writes IsSelfIssuer = True, turning a trust broker into a self-issuer; callers must
# pass -IsTrustBroker:(-not $issuer.IsSelfIssuer) to keep it. False = an omitted switch keeps it.  [U]
SET_ISSUER_OMITTED_TRUST_BROKER_RESETS = True

# Get-SPSite without -Limit returns at most this many site collections.   [C] help says 200 (2013/2016
# help; other versions of the help say 1000); `-Limit All` returns every one.
SITE_LIMIT_DEFAULT = 200


# SharePoint's own texts.
def duplicate_object(type_name: str, name: str, parent_type: str, parent_name: str) -> str:
    """[C] pattern (two spaces after the first sentence); [U] that these cmdlets surface it."""
    return (f'An object of the type {type_name} named "{name}" already exists under the parent '
            f'{parent_type} named "{parent_name}".  Rename your object or delete the existing object.')


PIPEBIND_NOT_FOUND = "A valid object could not be read from the provided pipebind parameter."  # [C/U]


def site_not_found(value: str) -> str:
    return f"Cannot find an SPSite object with Id or Url: {value}."  # [C]


def web_not_found(value: str) -> str:
    return f"Cannot find an SPWeb object with Id or Url : {value}"  # [U]


def web_application_not_found(value: str) -> str:
    return f"Cannot find an SPWebApplication object that contains the following Name, Id, or Url: {value}."  # [U]


def zone_not_found(url: str, zone: str) -> str:
    return f"The Web application at {url} does not have a zone {zone}."  # [U]


def app_principal_not_registered(name_identifier: str) -> str:
    return f"The app principal {name_identifier} is not registered in this farm."  # [U] (template text, ours)


# Template texts (ours: what the move-issuer-to-realm template throws).
def metadata_issuer_not_movable(name: str, metadata_endpoint: str) -> str:
    return (f"The trusted security token issuer '{name}' is metadata-based ({metadata_endpoint}): its "
            "registered issuer name comes from the partner's metadata, not from this farm's realm. Leave it "
            "as it is, or refresh it from the partner with Set-SPTrustedSecurityTokenIssuer -MetadataEndPoint.")


def issuer_name_without_realm(name: str, registered_issuer_name: str) -> str:
    return (f"The trusted security token issuer '{name}' is registered as '{registered_issuer_name}', which "
            "names no realm (expected <issuer id>@<realm>); re-create it with the issuer id its add-in uses.")


def local_root_not_removable() -> str:
    return "The local trusted root authority cannot be removed."  # [U]


# Metadata download. The .NET WebException texts of a failed download are shared by every product
# (runbooklib.lab.metadata_download); these two are the farm's.
METADATA_OVER_HTTP = ("The metadata end point '{url}' is not using HTTPS. Set AllowMetadataOverHttp to true "
                      "on the security token service configuration to allow it.")  # [U]
CERTIFICATE_HAS_PRIVATE_KEY = "The certificate must not contain a private key."  # [U]


# ---------------------------------------------------------------------------------------------
# Provider-hosted (high-trust) add-in tokens at /_vti_bin/client.svc and /_api/ (web.py).
# [C] the token shapes (s2s-facts.md): iss <issuer id>@<realm>, nameid <client id>@<realm>, aud
#     00000003-…/<host>@<realm>, RS256 with x5t; a user token (alg none) around a delegated actor.
# [C] an app-only call (no user) is allowed only where the principal's grant enables the app-only
#     policy (AllowAppOnlyPolicy in the manifest, -EnableAppOnlyPolicy in Set-SPAppPrincipalPermission).
# [U] a self-issuer's issuer id is the add-in's client id (TokenHelper falls back to ClientId when
#     no IssuerId is configured), so a self-issuer speaks only for <issuer id>@<realm>; a token from
#     it naming another client id is refused as if the issuer were asked to broker.
# [U] the lab's machine-readable reasons and which x-ms-diagnostics code each one carries.
# [U] a certificate-based issuer counts only while the realm in its registered name is the farm's
#     current realm (the breakage KB 4010011 describes after Set-SPAuthenticationRealm).
APP_ONLY_NEEDS_POLICY = True

# Authenticated but not authorised: 403 with SharePoint's access-denied error.   [C] text; [U] body shape
ACCESS_DENIED = "Access denied. You do not have permission to perform this action or access this resource."
ACCESS_DENIED_CODE = "-2147024891, System.UnauthorizedAccessException"


def access_denied_body() -> dict:
    """The /_api/ error body of a 403 (JSON light's ``odata.error``).                          [U]"""
    return {"odata.error": {"code": ACCESS_DENIED_CODE, "message": {"lang": "en-US", "value": ACCESS_DENIED}}}


# The wildcard managed path a new web application has (besides its explicit root).            [C]
MANAGED_PATHS = ("sites",)


# ---------------------------------------------------------------------------------------------
# The field review (hybrid-field-review.md, KB 4010011). What a farm does that the hybrid
# runbook must not get wrong.

# Get-SPAppPrincipal with a NameIdentifier the farm does not know returns nothing and writes no
# error. [C] for the object model underneath (SPAppPrincipalManager.LookupAppPrincipal: "the app
# principal, or a null reference if one could not be found"); [U] that the cmdlet passes the null
# on as no output rather than an error.
GET_APP_PRINCIPAL_UNKNOWN_WRITES_ERROR = False

# Register-SPAppPrincipal over a NameIdentifier already registered under another display name:
# [U] no source documents it. The lab takes the cautious reading that the existing registration
# is returned as it is (the display name is not changed), so a runbook must accept an existing
# registration under another display name as done, not try to rename it.
REGISTER_APP_PRINCIPAL_RENAMES = False

# Access denied. [C] .NET's text for UnauthorizedAccessException over E_ACCESSDENIED; [U] that
# Get-SPWebApplication writes it as a non-terminating PermissionDenied record when the account
# cannot read the web application (a missing grant, or the second hop to SQL Server failing).
ACCESS_IS_DENIED = "Access is denied. (Exception from HRESULT: 0x80070005 (E_ACCESSDENIED))"
ACCESS_DENIED_EXCEPTION = "System.UnauthorizedAccessException"

# A site collection whose content database cannot be read (offline, or no grant for the account):
# [U] the text opening its RootWeb throws in the app-principal scan.
def site_unreadable(url: str) -> str:
    return f"Cannot open the site collection {url}: {ACCESS_IS_DENIED}"


# Moving a high-trust add-in's issuer to the new realm. [C] KB 4010011's script creates a new issuer
# under the new realm (same certificate) and removes the old one. [U] that renaming it in place
# with Set-SPTrustedSecurityTokenIssuer -Certificate … -RegisteredIssuerName … (what the template
# move-issuer-to-realm does) has the same effect; the lab accepts it as if it did.
RENAME_ISSUER_IN_PLACE = "unconfirmed"

# Workflow Manager. [C] Register-SPWorkflowService -SPSite <SPSitePipeBind> -WorkflowHostUri <String>
# [-AllowOAuthHttp] [-Force] [-PartitionMode] [-ScopeName]; KB 4010011 re-runs it with -Force after a
# realm change. [U] the proxy's type and TypeName, that GetWorkflowServiceAddress gives the host it
# was registered with, and that the pairing shows as the app principal <WORKFLOW_PRINCIPAL_ID>@<realm>
# (display name below) on the site it was registered with.
WORKFLOW_PROXY_TYPE = "Microsoft.SharePoint.Workflow.Services.WorkflowServiceApplicationProxy"
WORKFLOW_PROXY_TYPE_NAME = "Workflow Service Application Proxy"
WORKFLOW_PROXY_NAME = "Workflow Service Application Proxy"
WORKFLOW_APP_PRINCIPAL_NAME = "Workflow"


def workflow_already_registered(host_uri: str) -> str:
    """[U] Register-SPWorkflowService without -Force on a farm already paired."""
    return (f"The farm is already registered with the workflow service at {host_uri}. Use the Force "
            "parameter to register it again.")


def workflow_http_without_allow(host_uri: str) -> str:
    """[U] an http:// WorkflowHostUri without -AllowOAuthHttp."""
    return (f"The workflow service address {host_uri} does not use HTTPS. Use the AllowOAuthHttp parameter "
            "to allow OAuth over HTTP.")
