# runbook-template: sharepoint/get-site-app-principals v1
param(
    [Parameter(Mandatory = $true)] [string] $Site
)
# The app principals a site collection knows (granted permissions or seen), with the name
# identifier taken from the encoded claim, so principals registered under an old realm can be found.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    foreach ($info in $spSite.RootWeb.GetSiteAppPrincipals()) {
        $claim = [string]$info.EncodedIdentityClaim
        [pscustomobject]@{
            Id                   = $info.Id
            DisplayName          = $info.DisplayName
            EncodedIdentityClaim = $claim
            NameIdentifier       = $claim.Substring($claim.LastIndexOf('|') + 1)
        }
    }
}
finally {
    $spSite.Dispose()
}
