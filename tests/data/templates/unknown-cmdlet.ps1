# runbook-template: broken/unknown-cmdlet v1
param(
    [Parameter(Mandatory = $true)] [string] $Name
)
# There is no Get-SPTrustedIssuer: the cmdlet is Get-SPTrustedSecurityTokenIssuer.
Get-SPTrustedIssuer -Identity $Name
