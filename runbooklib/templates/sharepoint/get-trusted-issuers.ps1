# runbook-template: sharepoint/get-trusted-issuers v1
param(
    [string] $Name
)
# Every trusted security token issuer (or the one named), flattened on the server: remoting would
# turn the nested signing certificate into its ToString() text and drop its bytes.
$ErrorActionPreference = 'Stop'

$issuers = if ($Name) { Get-SPTrustedSecurityTokenIssuer -Identity $Name } else { Get-SPTrustedSecurityTokenIssuer }
foreach ($issuer in $issuers) {
    $certificate = $issuer.SigningCertificate
    $metadataEndPoint = $null
    if ($issuer.MetadataEndPoint) { $metadataEndPoint = $issuer.MetadataEndPoint.OriginalString }
    [pscustomobject]@{
        Name                   = $issuer.Name
        Id                     = $issuer.Id
        RegisteredIssuerName   = $issuer.RegisteredIssuerName
        NameId                 = $issuer.NameId
        IsSelfIssuer           = $issuer.IsSelfIssuer
        MetadataEndPoint       = $metadataEndPoint
        IsAutomaticallyUpdated = $issuer.IsAutomaticallyUpdated
        Description            = $issuer.Description
        Thumbprint             = $certificate.Thumbprint
        Subject                = $certificate.Subject
        NotBefore              = $certificate.NotBefore.ToUniversalTime()
        NotAfter               = $certificate.NotAfter.ToUniversalTime()
        RawData                = [byte[]]$certificate.RawData
    }
}
