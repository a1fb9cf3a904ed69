# runbook-template: sharepoint/get-sts-certificate v1
param()
# The farm's STS signing certificate, public part only. RawData is read here, on the server,
# because remoting drops it from a certificate nested in the STS configuration object.
$ErrorActionPreference = 'Stop'

$stsConfig = Get-SPSecurityTokenServiceConfig
$certificate = $stsConfig.LocalLoginProvider.SigningCertificate
if ($null -eq $certificate) {
    throw 'The farm has no STS signing certificate (LocalLoginProvider.SigningCertificate is empty).'
}
[pscustomobject]@{
    Thumbprint = $certificate.Thumbprint
    Subject    = $certificate.Subject
    Issuer     = $certificate.Issuer
    NotBefore  = $certificate.NotBefore.ToUniversalTime()
    NotAfter   = $certificate.NotAfter.ToUniversalTime()
    KeySize    = $certificate.PublicKey.Key.KeySize
    RawData    = [byte[]]$certificate.RawData
}
