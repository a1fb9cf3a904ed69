# runbook-template: sharepoint/get-app-principal-permission v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier,
    [string] $Web
)
# Reads back what an app principal may do on a site collection: the explicit permission at each
# scope, and whether the app-only policy is allowed. Only the server object model can tell.
# $Web names a sub-web of the site collection (its full URL) whose own right is wanted; without
# it the root web is read.
#
# Confirmed (sharepoint-cmdlets.md §10): GetAppPrincipalSiteSubscriptionContentPermission and
# IsAppOnlyPolicyAllowed. UNCONFIRMED: GetAppPrincipalWebPermission and
# GetAppPrincipalSitePermission are taken from Microsoft's SharePoint API reference, not from
# sharepoint-cmdlets.md, and have not been run against a real farm by this project; no confirmed
# call reads the web or site-collection right. See UNCONFIRMED_SERVER_APIS in
# runbooklib/lab/sharepoint/texts.py.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    $rootWeb = $spSite.RootWeb
    $spWeb = $rootWeb
    if ($Web) {
        $spWeb = $spSite.OpenWeb(([uri]$Web).AbsolutePath)
    }
    $principal = Get-SPAppPrincipal -Site $spWeb -NameIdentifier $NameIdentifier
    if ($null -eq $principal) {
        throw "The app principal $NameIdentifier is not registered in this farm."
    }
    $manager = New-Object -TypeName Microsoft.SharePoint.SPAppPrincipalPermissionsManager -ArgumentList $spWeb
    [pscustomobject]@{
        NameIdentifier   = $principal.NameIdentifier
        Site             = $spWeb.Url
        # UNCONFIRMED (GetAppPrincipalWebPermission)
        Web              = [string]$manager.GetAppPrincipalWebPermission($principal)
        # UNCONFIRMED (GetAppPrincipalSitePermission)
        SiteCollection   = [string]$manager.GetAppPrincipalSitePermission($principal)
        SiteSubscription = [string]$manager.GetAppPrincipalSiteSubscriptionContentPermission($principal)
        AppOnlyPolicy    = [bool]$manager.IsAppOnlyPolicyAllowed($principal)
    }
}
finally {
    $spSite.Dispose()
}
