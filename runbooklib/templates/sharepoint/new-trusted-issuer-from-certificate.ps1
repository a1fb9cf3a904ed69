# runbook-template: sharepoint/new-trusted-issuer-from-certificate v1
param(
    [Parameter(Mandatory = $true)] [string] $Name,
    [Parameter(Mandatory = $true)] [byte[]] $CertificateRawData,
    [Parameter(Mandatory = $true)] [string] $RegisteredIssuerName,
    [switch] $IsTrustBroker,
    [string] $Description = ''
)
# Creates a certificate-based trusted security token issuer. -Certificate needs a live
# X509Certificate2, so it is built here from the DER bytes the runbook sends.
$ErrorActionPreference = 'Stop'

$certificate = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (,$CertificateRawData)
New-SPTrustedSecurityTokenIssuer -Name $Name -Certificate $certificate -RegisteredIssuerName $RegisteredIssuerName `
    -IsTrustBroker:$IsTrustBroker -Description $Description
