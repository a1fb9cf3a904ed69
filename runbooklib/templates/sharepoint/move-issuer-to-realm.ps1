# runbook-template: sharepoint/move-issuer-to-realm v1
param(
    [Parameter(Mandatory = $true)] [string] $Name,
    [Parameter(Mandatory = $true)] [string] $Realm
)
# Re-registers a certificate-based trusted security token issuer as <issuer id>@<Realm> after the
# farm's realm has changed (KB 4010011), keeping its signing certificate and whether it is a trust
# broker. Everything runs here with live objects: -Certificate needs a live X509Certificate2, and
# Set-SPTrustedSecurityTokenIssuer cannot be called with -RegisteredIssuerName alone (neither
# parameter set would be chosen). -IsTrustBroker is passed explicitly because an omitted switch
# means $false. Idempotent: an issuer already under the realm is left alone (Changed = $false).
#
# UNCONFIRMED: that renaming in place with Set-SPTrustedSecurityTokenIssuer -RegisteredIssuerName
# makes the issuer work under the new realm. Microsoft's documented route (the KB 4010011 script)
# creates a new issuer under the new realm and removes the old one instead. See
# RENAME_ISSUER_IN_PLACE in runbooklib/lab/sharepoint/texts.py.
$ErrorActionPreference = 'Stop'

$issuer = Get-SPTrustedSecurityTokenIssuer -Identity $Name
if ($issuer.MetadataEndPoint) {
    # Its name and certificate come from the partner's metadata, not from this farm's realm.
    throw ("The trusted security token issuer '$($issuer.Name)' is metadata-based " +
        "($($issuer.MetadataEndPoint.OriginalString)): its registered issuer name comes from the partner's " +
        "metadata, not from this farm's realm. Leave it as it is, or refresh it from the partner with " +
        "Set-SPTrustedSecurityTokenIssuer -MetadataEndPoint.")
}
$registered = [string]$issuer.RegisteredIssuerName
if ($registered.IndexOf('@') -lt 0) {
    throw ("The trusted security token issuer '$($issuer.Name)' is registered as '$registered', which names " +
        "no realm (expected <issuer id>@<realm>); re-create it with the issuer id its add-in uses.")
}
$issuerId = $registered.Split('@')[0]
$wanted = "$issuerId@$($Realm.Trim().ToLowerInvariant())"
$changed = $false
if ($registered -ne $wanted) {
    Set-SPTrustedSecurityTokenIssuer -Identity $issuer -Certificate $issuer.SigningCertificate `
        -RegisteredIssuerName $wanted -IsTrustBroker:(-not $issuer.IsSelfIssuer) -Confirm:$false
    $changed = $true
    $issuer = Get-SPTrustedSecurityTokenIssuer -Identity $issuer.Id
}
[pscustomobject]@{
    Name                 = $issuer.Name
    RegisteredIssuerName = $issuer.RegisteredIssuerName
    IsSelfIssuer         = $issuer.IsSelfIssuer
    Changed              = $changed
}
