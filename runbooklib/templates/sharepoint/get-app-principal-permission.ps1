# runbook-template: sharepoint/get-app-principal-permission v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier
)
# Reads back what an app principal may do on a site collection: the explicit permission at each
# scope, and whether the app-only policy is allowed. Only the server object model can tell.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    $rootWeb = $spSite.RootWeb
    $principal = Get-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier
    if ($null -eq $principal) {
        throw "The app principal $NameIdentifier is not registered in this farm."
    }
    $manager = New-Object -TypeName Microsoft.SharePoint.SPAppPrincipalPermissionsManager -ArgumentList $rootWeb
    [pscustomobject]@{
        NameIdentifier   = $principal.NameIdentifier
        Site             = $rootWeb.Url
        Web              = [string]$manager.GetAppPrincipalWebPermission($principal)
        SiteCollection   = [string]$manager.GetAppPrincipalSitePermission($principal)
        SiteSubscription = [string]$manager.GetAppPrincipalSiteSubscriptionContentPermission($principal)
        AppOnlyPolicy    = [bool]$manager.IsAppOnlyPolicyAllowed($principal)
    }
}
finally {
    $spSite.Dispose()
}
