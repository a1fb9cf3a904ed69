# runbook-template: sharepoint/new-trusted-root-authority-from-certificate v1
param(
    [Parameter(Mandatory = $true)] [string] $Name,
    [Parameter(Mandatory = $true)] [byte[]] $CertificateRawData
)
# Adds a trusted root authority from a certificate's DER bytes (public key only): -Certificate
# needs a live X509Certificate2, built here on the server.
$ErrorActionPreference = 'Stop'

$certificate = New-Object -TypeName System.Security.Cryptography.X509Certificates.X509Certificate2 -ArgumentList (,$CertificateRawData)
New-SPTrustedRootAuthority -Name $Name -Certificate $certificate
