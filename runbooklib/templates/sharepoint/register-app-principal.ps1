# runbook-template: sharepoint/register-app-principal v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier,
    [Parameter(Mandatory = $true)] [string] $DisplayName
)
# Registers an app principal on the root web of a site collection. Register-SPAppPrincipal needs a
# live SPWeb for -Site, which cannot travel over remoting, so the lookup and the registration run
# here in one block. Idempotent: a principal already registered under this NameIdentifier is
# returned as it is, whatever its display name — the display name is a label, and whether
# Register-SPAppPrincipal renames an existing principal is not documented. The principal comes
# back with a Changed note property.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    $rootWeb = $spSite.RootWeb
    $principal = Get-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier -ErrorAction SilentlyContinue
    $changed = $false
    if ($null -eq $principal) {
        $principal = Register-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier -DisplayName $DisplayName
        $changed = $true
    }
    $principal | Add-Member -NotePropertyName Changed -NotePropertyValue $changed -PassThru
}
finally {
    $spSite.Dispose()
}
