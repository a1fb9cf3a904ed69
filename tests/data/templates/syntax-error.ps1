# runbook-template: broken/syntax-error v1
param(
    [Parameter(Mandatory = $true)] [string] $Name
)
# The closing brace of the if block is missing.
$issuer = Get-SPTrustedSecurityTokenIssuer -Identity $Name
if ($null -eq $issuer) {
    Write-Error -Message "No issuer named $Name"
