# runbook-template: sharepoint/set-oauth-over-http v1
param(
    [Parameter(Mandatory = $true)]
    [bool] $Enabled
)
# AllowOAuthOverHttp is a property of the live STS configuration object, not a cmdlet parameter:
# it can only be changed (and persisted with Update()) inside the farm's own session.
$ErrorActionPreference = 'Stop'

$stsConfig = Get-SPSecurityTokenServiceConfig
if ($stsConfig.AllowOAuthOverHttp -ne $Enabled) {
    $stsConfig.AllowOAuthOverHttp = $Enabled
    $stsConfig.Update()
}
(Get-SPSecurityTokenServiceConfig).AllowOAuthOverHttp
