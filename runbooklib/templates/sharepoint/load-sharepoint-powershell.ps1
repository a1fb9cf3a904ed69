# runbook-template: sharepoint/load-sharepoint-powershell v1
param()
# Makes the SharePoint cmdlets available in this remote session. A remote session runs no
# profile, so unlike the SharePoint Management Shell nothing has loaded them yet. SharePoint
# Server 2013, 2016 and 2019 register a snap-in; Subscription Edition ships a module instead
# (whether that module would load itself on first use is not relied on: it is imported).
# Running it again in the same session changes nothing and reports 'already'.
# Returns Loaded ('snapin' | 'module' | 'already') and Version (the farm's build, if readable).
$ErrorActionPreference = 'Stop'

$snapinName = 'Microsoft.SharePoint.PowerShell'
$moduleName = 'SharePointServer'

$snapinLoaded = $null -ne (Get-PSSnapin -Name $snapinName -ErrorAction SilentlyContinue)
$moduleLoaded = $null -ne (Get-Module -Name $moduleName)
if ($snapinLoaded -or $moduleLoaded) {
    $loaded = 'already'
}
elseif ($null -ne (Get-PSSnapin -Name $snapinName -Registered -ErrorAction SilentlyContinue)) {
    Add-PSSnapin -Name $snapinName
    $loaded = 'snapin'
}
elseif ($null -ne (Get-Module -Name $moduleName -ListAvailable)) {
    # -Global: the module stays imported for the later commands of this session.
    Import-Module -Name $moduleName -Global -DisableNameChecking
    $loaded = 'module'
}
else {
    throw "SharePoint PowerShell is not installed on this server: neither the snap-in $snapinName nor the module $moduleName was found. Run this on a server of the SharePoint farm."
}

$farm = Get-SPFarm -ErrorAction SilentlyContinue
$version = $null
if ($null -ne $farm) {
    $version = $farm.BuildVersion.ToString()
}
[pscustomobject]@{
    Loaded  = $loaded
    Version = $version
}
