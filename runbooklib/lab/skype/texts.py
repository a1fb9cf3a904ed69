"""What the simulated Skype for Business pool says: module, type names, defaults and error texts.

Each entry carries a tag from /work/shared/design/skype-exchange-cmdlets.md:

* ``[C]`` confirmed from product documentation or a capture;
* ``[U]`` unconfirmed: our best guess, kept here on purpose. Change it here, nowhere else.
"""

from __future__ import annotations

# ---------------------------------------------------------------------------------------------
# Well-known identities                                                                    [C]
SKYPE_PRINCIPAL_ID = "00000004-0000-0ff1-ce00-000000000000"
EXCHANGE_PRINCIPAL_ID = "00000002-0000-0ff1-ce00-000000000000"
SHAREPOINT_PRINCIPAL_ID = "00000003-0000-0ff1-ce00-000000000000"

# ---------------------------------------------------------------------------------------------
# The module and its objects
MODULE_NAME = "SkypeForBusiness"                                       # [C] (lab-notes: Import-Module)
MODULE_VERSION = "7.0.0.0"                                             # [U] the module of SfB Server 2019
PRODUCT_VERSION = "7.0.2046.0"                                         # [U] an SfB Server 2019 build
T_CERTIFICATE = ("Microsoft.Rtc.Management.Deployment.CertificateReference", "System.Object")  # [C] PSDOC output type
T_OAUTH_SETTINGS = ("Microsoft.Rtc.Management.WritableConfig.Settings.SSAuth.OAuthSettings", "System.Object")  # [C]
T_PARTNER_APPLICATION = ("Microsoft.Rtc.Management.WritableConfig.Settings.SSAuth.PartnerApplication#Decorated", "System.Object")  # [C]
T_OAUTH_SERVER = ("Microsoft.Rtc.Management.WritableConfig.Settings.SSAuth.OAuthServer#Decorated", "System.Object")  # [C]
T_RESOURCE_DATA = ("Microsoft.Rtc.Management.ResourceData", "System.Object")            # [C] Test-CsExStorageConnectivity
T_SIP_DOMAIN = ("Microsoft.Rtc.Management.Xds.DisplaySipDomain", "System.Object")             # [U]
T_PSCUSTOMOBJECT = ("System.Management.Automation.PSCustomObject", "System.Object")  # [C]

# [C] Types of certificate the runbooks assign or read; OAuthTokenIssuer is global (replicated),
# the others belong to the front end they are set on.
CERT_TYPES = ("Default", "WebServicesInternal", "WebServicesExternal", "OAuthTokenIssuer")
GLOBAL_CERT_TYPES = ("OAuthTokenIssuer",)
CERT_TYPE_ENUM = "Microsoft.Rtc.Management.Deployment.CertType"        # [U]
TRUST_LEVELS = ("Application", "Full", "User")                         # [C] ApplicationTrustLevel
TRUST_LEVEL_ENUM = "Microsoft.Rtc.Management.WritableConfig.Settings.SSAuth.ApplicationTrustLevel"  # [U]
DEFAULT_TRUST_LEVEL = "Full"                                           # [C]

# [U] What a fresh SfB Server deployment shows in Get-CsOAuthConfiguration before anyone set it.
INITIAL_OAUTH = {"Realm": "", "ServiceName": "", "ExchangeAutodiscoverUrl": "",
                 "ExchangeAutodiscoverAllowedDomains": "*", "ClientAuthorizationOAuthServerIdentity": "",
                 "ClientAdalAuthOverride": "Allowed", "AlternateAudienceUrl": ""}
OAUTH_SETTINGS = ("Realm", "ServiceName", "ExchangeAutodiscoverUrl", "ExchangeAutodiscoverAllowedDomains",
                  "ClientAuthorizationOAuthServerIdentity", "ClientAdalAuthOverride", "AlternateAudienceUrl")

# ---------------------------------------------------------------------------------------------
# Errors
# [C] New-/Set-CsPartnerApplication -MetadataUrl: the URL is fetched while the parameter is bound.
METADATA_BINDING = ("Cannot bind parameter 'MetadataUrl' to the target. Exception setting \"MetadataUrl\": \"The "
                    "metadata document could not be downloaded from the URL in the MetadataUrl parameter or "
                    "downloaded data is not a valid metadata document.\"")
# [U] The same for New-CsOAuthServer (the doc says only that the URL must be reachable).
OAUTH_SERVER_METADATA = ("Cannot bind parameter 'MetadataUrl' to the target. Exception setting \"MetadataUrl\": \"The "
                         "metadata document could not be downloaded from the URL in the MetadataUrl parameter or "
                         "downloaded data is not a valid metadata document.\"")
BINDING_EXCEPTION = "System.Management.Automation.ParameterBindingException"  # [C]
CMDLET_EXCEPTION = "Microsoft.Rtc.Management.ManagementException"      # [U]


def already_exists(identity: str) -> str:
    """[U] New-Cs* for an Identity that exists (no capture found; a generic text)."""
    return f"Cannot create item because an item with identity \"{identity}\" already exists."


def not_found(identity: str) -> str:
    """[U] Set-/Remove-Cs* for an Identity that does not exist."""
    return f"Cannot get item because the item with identity \"{identity}\" does not exist."


def certificate_not_in_store(thumbprint: str) -> str:
    """[U] Set-CsCertificate -Thumbprint for a certificate this computer's store does not hold."""
    return (f"Command execution failed: The certificate with thumbprint \"{thumbprint}\" was not found in the "
            "local computer's certificate store (LocalMachine\\My).")


ROLL_NEEDS_EFFECTIVE_DATE = "The EffectiveDate parameter must be specified with the Roll parameter."  # [U] text; [C] rule
EFFECTIVE_DATE_PAST = "The EffectiveDate must be in the future."        # [U]
OAUTH_NOT_GLOBAL = ("Command execution failed: Certificates of type OAuthTokenIssuer are assigned globally: use "
                    "-Identity global.")                                 # [U] wording; [C] rule (SFB-CERT)


def invalid_sip_uri(value: str) -> str:
    """[U] Test-CsExStorageConnectivity with a SipUri that is no user of the pool."""
    return f"Test-CsExStorageConnectivity : User \"{value}\" was not found. Specify a valid SIP URI of a user."


# [C] GH702 gives error code 574 for a failed Exchange storage call; [U] the rest of the wording.
STORAGE_ERROR_CODE = 574


def storage_failed(detail: str) -> str:
    return (f"Test failed. ExchangeStorageException: error code {STORAGE_ERROR_CODE}: the Storage Service could "
            f"not write to Exchange Web Services. {detail}")


STORAGE_NO_AUTODISCOVER = ("The Exchange Autodiscover URL is not configured (Get-CsOAuthConfiguration "
                           "ExchangeAutodiscoverUrl is empty).")                                  # [U]
STORAGE_NO_EXCHANGE_PARTNER = ("No partner application for Exchange (00000002-0000-0ff1-ce00-000000000000) is "
                               "configured, so no OAuth token can be issued for it.")              # [U]
STORAGE_NO_CERTIFICATE = ("The OAuthTokenIssuer certificate is not assigned or is not in this front end's "
                          "certificate store with its private key.")                               # [U]
STORAGE_PASSED = "Test passed."                                        # [U] (SFB-CFGPA: a log ending so)

# [U] Exchange Web Services path below the autodiscover host, and the Storage Service's EWS call.
EWS_PATH = "/EWS/Exchange.asmx"
TOKEN_LIFETIME = 3600

# ---------------------------------------------------------------------------------------------
# The pool's web: S2S metadata and an OAuth-protected endpoint partners call
METADATA_PATH = "/metadata/json/1"                                     # [C] SFB-CFGPA
OAUTH_ENDPOINT = "/ucwa/oauth/v1/applications"                          # [U] where a partner's token is judged
METADATA_NAME = "Skype for Business Server"                            # [U] (no capture of SfB metadata)
