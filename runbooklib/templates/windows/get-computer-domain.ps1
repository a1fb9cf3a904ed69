# runbook-template: windows/get-computer-domain v1
param()
# The Active Directory domain and forest this computer is joined to (the computer's, not the
# signed-in user's), for trusts that need both ends in one forest.
$ErrorActionPreference = 'Stop'

$domain = [System.DirectoryServices.ActiveDirectory.Domain]::GetComputerDomain()
[pscustomobject]@{
    ComputerName = $env:COMPUTERNAME
    Domain       = $domain.Name
    Forest       = $domain.Forest.Name
}
