# runbook-template: oos/grant-network-service-key-read v1
param(
    [Parameter(Mandatory = $true)] [string] $Thumbprint
)
# Lets NETWORK SERVICE (the account Office Online Server's worker processes run as) read the
# private key of a certificate in LocalMachine\My, what MMC's "Manage Private Keys" does. The key
# file is in the CNG folder or the legacy CryptoAPI folder depending on the provider the PFX
# named. Granted by SID (S-1-5-20), so a localised account name does not matter. Idempotent:
# Changed is $false when the grant was already there.
$ErrorActionPreference = 'Stop'

$certificate = Get-Item -Path "Cert:\LocalMachine\My\$Thumbprint"
if (-not $certificate.HasPrivateKey) {
    throw "The certificate $Thumbprint in LocalMachine\My has no private key to grant access to."
}
$rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($certificate)
if ($rsa -is [System.Security.Cryptography.RSACng]) {
    $provider = 'CNG'
    $keyFile = Join-Path "$env:ProgramData\Microsoft\Crypto\Keys" $rsa.Key.UniqueName
}
else {
    $provider = 'CSP'
    $keyFile = Join-Path "$env:ProgramData\Microsoft\Crypto\RSA\MachineKeys" $certificate.PrivateKey.CspKeyContainerInfo.UniqueKeyContainerName
}
$networkService = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-20')
$acl = Get-Acl -Path $keyFile
$present = $acl.Access | Where-Object {
    $_.AccessControlType -eq 'Allow' -and
    $_.IdentityReference.Translate([System.Security.Principal.SecurityIdentifier]) -eq $networkService -and
    ($_.FileSystemRights -band [System.Security.AccessControl.FileSystemRights]::Read) -eq [System.Security.AccessControl.FileSystemRights]::Read
}
$changed = $false
if ($null -eq $present) {
    $rule = New-Object System.Security.AccessControl.FileSystemAccessRule($networkService, 'Read', 'Allow')
    $acl.AddAccessRule($rule)
    Set-Acl -Path $keyFile -AclObject $acl
    $changed = $true
}
[pscustomobject]@{
    Thumbprint  = $certificate.Thumbprint
    KeyProvider = $provider
    KeyFile     = $keyFile
    Changed     = $changed
}
