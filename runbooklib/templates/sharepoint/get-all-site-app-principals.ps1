# runbook-template: sharepoint/get-all-site-app-principals v1
param()
# Every app principal of every site collection in every content web application, one row per site
# collection and principal (Site, Web, DisplayName, NameIdentifier, External), so principals registered under
# an old realm can be found anywhere in the farm. Web is empty for the root web; a principal with
# its own right on a sub-web gets a row for that web too, so it can be re-granted where it was
# granted. A site collection that cannot be read gives one row with its Error instead and the scan
# goes on. Can take a while on a large farm: each site collection is opened once and disposed of.
#
# UNCONFIRMED: SPWeb.GetSiteAppPrincipals() (SPSiteAppPrincipalInfo: Id, DisplayName,
# EncodedIdentityClaim), SPClaimProviderManager.DecodeClaim and
# SPAppPrincipalPermissionsManager.GetAppPrincipalWebPermission are taken from Microsoft's
# SharePoint API reference, not from sharepoint-cmdlets.md; they have not been run against a real
# farm by this project. See UNCONFIRMED_SERVER_APIS in runbooklib/lab/sharepoint/texts.py.
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
        $principals = @(foreach ($info in $spSite.RootWeb.GetSiteAppPrincipals()) {
            [pscustomobject]@{
                DisplayName    = $info.DisplayName
                NameIdentifier = Get-NameIdentifier ([string]$info.EncodedIdentityClaim)
                # UNCONFIRMED: a SharePoint-hosted add-in's claim is believed to read ms.sp.int (internal),
                # a provider-hosted one's ms.sp.ext. Only external ones depend on a trusted issuer.
                External       = ([string]$info.EncodedIdentityClaim) -notlike '*|ms.sp.int|*'
            }
        })
        foreach ($p in $principals) {
            [pscustomobject]@{ Site = $spSite.Url; Web = ''; DisplayName = $p.DisplayName
                               NameIdentifier = $p.NameIdentifier; External = $p.External; Error = $null }
        }
        foreach ($spWeb in $spSite.AllWebs) {
            try {
                if ($spWeb.IsRootWeb) { continue }
                $manager = New-Object -TypeName Microsoft.SharePoint.SPAppPrincipalPermissionsManager -ArgumentList $spWeb
                foreach ($p in $principals) {
                    $principal = Get-SPAppPrincipal -Site $spWeb -NameIdentifier $p.NameIdentifier
                    # UNCONFIRMED (GetAppPrincipalWebPermission): the explicit right on this web.
                    if ($null -ne $principal -and [string]$manager.GetAppPrincipalWebPermission($principal) -ne 'None') {
                        [pscustomobject]@{ Site = $spSite.Url; Web = $spWeb.Url; DisplayName = $p.DisplayName
                                           NameIdentifier = $p.NameIdentifier; External = $p.External
                                           Error = $null }
                    }
                }
            }
            finally {
                $spWeb.Dispose()
            }
        }
    }
    catch {
        [pscustomobject]@{ Site = $spSite.Url; Web = ''; DisplayName = $null; NameIdentifier = $null
                           External = $null; Error = $_.Exception.Message }
    }
    finally {
        $spSite.Dispose()
    }
}
