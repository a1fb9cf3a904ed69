# runbook-template: sharepoint/get-all-site-app-principals v1
param()
# Every app principal of every site collection in every content web application, one row per site
# collection and principal (Site, DisplayName, NameIdentifier), so principals registered under an
# old realm can be found anywhere in the farm. Can take a while on a large farm: each site
# collection is opened once and disposed of at once.
#
# UNCONFIRMED: SPWeb.GetSiteAppPrincipals() (SPSiteAppPrincipalInfo: Id, DisplayName,
# EncodedIdentityClaim) and SPClaimProviderManager.DecodeClaim are taken from Microsoft's SharePoint
# API reference, not from sharepoint-cmdlets.md; they have not been run against a real farm by this
# project. See UNCONFIRMED_SERVER_APIS in runbooklib/lab/sharepoint/texts.py.
$ErrorActionPreference = 'Stop'

function Get-NameIdentifier([string] $Claim) {
    # UNCONFIRMED (DecodeClaim): the decoded claim's Value is believed to be <client id>@<realm>;
    # otherwise fall back to the text after the last '|' of i:0i.t|ms.sp.ext|<client id>@<realm>.
    try {
        return [Microsoft.SharePoint.Administration.Claims.SPClaimProviderManager]::Local.DecodeClaim($Claim).Value
    }
    catch {
        return $Claim.Substring($Claim.LastIndexOf('|') + 1)
    }
}

foreach ($spSite in @(Get-SPSite -Limit All)) {
    try {
        # UNCONFIRMED (GetSiteAppPrincipals): principals granted on, or having visited, the site collection.
        foreach ($info in $spSite.RootWeb.GetSiteAppPrincipals()) {
            [pscustomobject]@{
                Site           = $spSite.Url
                DisplayName    = $info.DisplayName
                NameIdentifier = Get-NameIdentifier ([string]$info.EncodedIdentityClaim)
            }
        }
    }
    finally {
        $spSite.Dispose()
    }
}
