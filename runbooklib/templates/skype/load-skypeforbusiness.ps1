# runbook-template: skype/load-skypeforbusiness v1
param()
# Makes the Skype for Business Server cmdlets available in this remote session. A remote session
# runs no profile, so the SkypeForBusiness module is imported explicitly. Running it again in the
# same session changes nothing and reports 'already'. Returns Loaded ('module' | 'already') and
# Version (the module's version).
$ErrorActionPreference = 'Stop'

$moduleName = 'SkypeForBusiness'
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
    throw "Skype for Business Server is not installed on this server: the module $moduleName was not found. Run this on a Front End Server of the pool."
}
[pscustomobject]@{
    Loaded  = $loaded
    Version = [string]$module.Version
}
