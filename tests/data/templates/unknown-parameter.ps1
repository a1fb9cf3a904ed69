# runbook-template: broken/unknown-parameter v1
param(
    [Parameter(Mandatory = $true)] [string] $Name
)
# Get-SPTrustedRootAuthority has no -Name parameter (only -Identity), whatever its help once said.
Get-SPTrustedRootAuthority -Name $Name
