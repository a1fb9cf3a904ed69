# runbook-template: sharepoint/get-trusted-root-authorities v1
param()
# Every trusted root authority (including "local", the farm's own root) with its certificate
# flattened on the server, so thumbprints and bytes survive remoting.
$ErrorActionPreference = 'Stop'

foreach ($authority in Get-SPTrustedRootAuthority) {
    $certificate = $authority.Certificate
    [pscustomobject]@{
        Name       = $authority.Name
        Id         = $authority.Id
        Thumbprint = $certificate.Thumbprint
        Subject    = $certificate.Subject
        NotAfter   = $certificate.NotAfter.ToUniversalTime()
        RawData    = [byte[]]$certificate.RawData
    }
}
