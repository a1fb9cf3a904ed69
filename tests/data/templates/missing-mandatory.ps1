# runbook-template: broken/missing-mandatory v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier
)
# Register-SPAppPrincipal needs -DisplayName as well: a remote session cannot prompt for it.
$spSite = Get-SPSite -Identity $Site
try {
    Register-SPAppPrincipal -Site $spSite.RootWeb -NameIdentifier $NameIdentifier
}
finally {
    $spSite.Dispose()
}
