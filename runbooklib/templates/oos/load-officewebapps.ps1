# runbook-template: oos/load-officewebapps v1
param()
# Makes the Office Online Server cmdlets available in this remote session. A remote session runs
# no profile and a long-lived host may not see the module path setup added, so the OfficeWebApps
# module is imported explicitly. Running it again in the same session changes nothing and reports
# 'already'. Returns Loaded ('module' | 'already') and Version (the module's version).
$ErrorActionPreference = 'Stop'

$moduleName = 'OfficeWebApps'
$module = Get-Module -Name $moduleName
if ($null -ne $module) {
    $loaded = 'already'
}
elseif ($null -ne (Get-Module -Name $moduleName -ListAvailable)) {
    # -Global: the module stays imported for the later commands of this session.
    Import-Module -Name $moduleName -Global -DisableNameChecking
    $module = Get-Module -Name $moduleName
    $loaded = 'module'
}
else {
    throw "Office Online Server is not installed on this server: the module $moduleName was not found. Run this on a server of the Office Online Server farm."
}
[pscustomobject]@{
    Loaded  = $loaded
    Version = [string]$module.Version
}
