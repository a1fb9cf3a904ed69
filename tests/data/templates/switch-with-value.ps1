# runbook-template: broken/switch-with-value v1
param(
    [Parameter(Mandatory = $true)] [string] $Name,
    [Parameter(Mandatory = $true)] [string] $MetadataUrl
)
# A switch takes its value after a colon: "-IsTrustBroker $true" passes $true as a positional
# argument, which New-SPTrustedSecurityTokenIssuer has no place for.
New-SPTrustedSecurityTokenIssuer -Name $Name -MetadataEndPoint $MetadataUrl -IsTrustBroker $true
