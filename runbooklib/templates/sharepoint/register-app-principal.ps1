# runbook-template: sharepoint/register-app-principal v1
param(
    [Parameter(Mandatory = $true)] [string] $Site,
    [Parameter(Mandatory = $true)] [string] $NameIdentifier,
    [Parameter(Mandatory = $true)] [string] $DisplayName
)
# Registers an app principal on the root web of a site collection. Register-SPAppPrincipal needs a
# live SPWeb for -Site, which cannot travel over remoting, so the lookup and the registration run
# here in one block. Idempotent: an existing principal with the same name and display name is
# returned unchanged. The principal comes back with a Changed note property.
$ErrorActionPreference = 'Stop'

$spSite = Get-SPSite -Identity $Site
try {
    $rootWeb = $spSite.RootWeb
    $principal = Get-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier -ErrorAction SilentlyContinue
    $changed = $false
    if ($null -eq $principal -or $principal.DisplayName -ne $DisplayName) {
        $principal = Register-SPAppPrincipal -Site $rootWeb -NameIdentifier $NameIdentifier -DisplayName $DisplayName
        $changed = $true
    }
    $principal | Add-Member -NotePropertyName Changed -NotePropertyValue $changed -PassThru
}
finally {
    $spSite.Dispose()
}
