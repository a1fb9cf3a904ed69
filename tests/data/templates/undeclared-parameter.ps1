# runbook-template: broken/undeclared-parameter v1
param(
    [Parameter(Mandatory = $true)] [string] $Name
)
# Its call site also binds Realm, which this block does not declare.
Get-SPTrustedSecurityTokenIssuer -Identity $Name
