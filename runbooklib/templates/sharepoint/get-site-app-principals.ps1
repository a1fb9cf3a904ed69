# runbook-template: sharepoint/get-site-app-principals v1
param(
    [Parameter(Mandatory = $true)] [string] $Site
)
# The app principals a site collection knows (granted permissions or seen), with the name
# identifier taken from the encoded claim, so principals registered under an old realm can be found.
# For the whole farm, use sharepoint/get-all-site-app-principals.
#
# UNCONFIRMED: SPWeb.GetSiteAppPrincipals() (SPSiteAppPrincipalInfo: Id, DisplayName,
# EncodedIdentityClaim) and SPClaimProviderManager.DecodeClaim are taken from Microsoft's SharePoint
# API reference, not from sharepoint-cmdlets.md; they have not been run against a real farm by this
# project. See UNCONFIRMED_SERVER_APIS in runbooklib/lab/_sharepoint_texts.py.
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

$spSite = Get-SPSite -Identity $Site
try {
    # UNCONFIRMED (GetSiteAppPrincipals): principals granted on, or having visited, the site collection.
    foreach ($info in $spSite.RootWeb.GetSiteAppPrincipals()) {
        $claim = [string]$info.EncodedIdentityClaim
        [pscustomobject]@{
            Id                   = $info.Id
            DisplayName          = $info.DisplayName
            EncodedIdentityClaim = $claim
            NameIdentifier       = Get-NameIdentifier $claim
        }
    }
}
finally {
    $spSite.Dispose()
}
