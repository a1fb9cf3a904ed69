# runbook-template: sharepoint/set-app-principal-permission v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier,
    [Parameter(Mandatory = $true)] [ValidateSet('Site', 'SiteCollection', 'SiteSubscription')] [string] $Scope,
    [Parameter(Mandatory = $true)] [ValidateSet('Read', 'Write', 'Manage', 'FullControl')] [string] $Right,
    [switch] $EnableAppOnlyPolicy
)
# Grants an app principal a right at a scope. Set-SPAppPrincipalPermission takes the live
# SPAppPrincipal and SPWeb objects, so both are looked up here, next to the call.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    $rootWeb = $spSite.RootWeb
    $principal = Get-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier
    if ($null -eq $principal) {
        throw "The app principal $NameIdentifier is not registered in this farm."
    }
    Set-SPAppPrincipalPermission -AppPrincipal $principal -Site $rootWeb -Scope $Scope -Right $Right `
        -EnableAppOnlyPolicy:$EnableAppOnlyPolicy -Confirm:$false
    [pscustomobject]@{
        NameIdentifier = $principal.NameIdentifier
        Site           = $rootWeb.Url
        Scope          = $Scope
        Right          = $Right
        AppOnlyPolicy  = [bool]$EnableAppOnlyPolicy
    }
}
finally {
    $spSite.Dispose()
}
