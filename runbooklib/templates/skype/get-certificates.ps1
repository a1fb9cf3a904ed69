# runbook-template: skype/get-certificates v1
param()
# Every certificate in this front end's LocalMachine\My store, projected here on the server:
# over remoting a certificate loses HasPrivateKey and its key size, and Get-CsCertificate lists
# only certificates already assigned. The DNS names are the Subject Alternative Names; RawData is
# the public certificate (DER), never its key.
$ErrorActionPreference = 'Stop'

foreach ($certificate in Get-ChildItem -Path 'Cert:\LocalMachine\My') {
    [pscustomobject]@{
        Thumbprint    = $certificate.Thumbprint
        Subject       = $certificate.Subject
        Issuer        = $certificate.Issuer
        FriendlyName  = $certificate.FriendlyName
        NotBefore     = $certificate.NotBefore.ToUniversalTime()
        NotAfter      = $certificate.NotAfter.ToUniversalTime()
        HasPrivateKey = $certificate.HasPrivateKey
        KeySize       = $certificate.PublicKey.Key.KeySize
        DnsNames      = @($certificate.DnsNameList | ForEach-Object { $_.Unicode })
        RawData       = $certificate.RawData
    }
}
