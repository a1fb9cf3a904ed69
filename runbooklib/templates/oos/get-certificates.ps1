# runbook-template: oos/get-certificates v1
param(
    [Parameter(Mandatory = $true)] [ValidateSet('My', 'Root')] [string] $Store
)
# Every certificate of LocalMachine\<Store>, projected here on the server: over remoting a
# certificate loses its FriendlyName and HasPrivateKey, and only here can its private key file
# and that file's ACL be found. CNG keys live in Crypto\Keys, legacy CryptoAPI keys in
# Crypto\RSA\MachineKeys; the CNG lookup is tried first because .NET Framework's PrivateKey
# property fails on CNG keys.
$ErrorActionPreference = 'Stop'

$networkService = New-Object System.Security.Principal.SecurityIdentifier('S-1-5-20')
foreach ($certificate in Get-ChildItem -Path "Cert:\LocalMachine\$Store") {
    $provider = $null
    $keyFile = $null
    $networkServiceCanRead = $false
    if ($certificate.HasPrivateKey) {
        $rsa = [System.Security.Cryptography.X509Certificates.RSACertificateExtensions]::GetRSAPrivateKey($certificate)
        if ($rsa -is [System.Security.Cryptography.RSACng]) {
            $provider = 'CNG'
            $keyFile = Join-Path "$env:ProgramData\Microsoft\Crypto\Keys" $rsa.Key.UniqueName
        }
        else {
            $provider = 'CSP'
            $keyFile = Join-Path "$env:ProgramData\Microsoft\Crypto\RSA\MachineKeys" $certificate.PrivateKey.CspKeyContainerInfo.UniqueKeyContainerName
        }
        $rules = (Get-Acl -Path $keyFile).Access | Where-Object {
            $_.AccessControlType -eq 'Allow' -and
            $_.IdentityReference.Translate([System.Security.Principal.SecurityIdentifier]) -eq $networkService -and
            ($_.FileSystemRights -band [System.Security.AccessControl.FileSystemRights]::Read) -eq [System.Security.AccessControl.FileSystemRights]::Read
        }
        $networkServiceCanRead = $null -ne $rules
    }
    [pscustomobject]@{
        Thumbprint            = $certificate.Thumbprint
        Subject               = $certificate.Subject
        Issuer                = $certificate.Issuer
        FriendlyName          = $certificate.FriendlyName
        NotBefore             = $certificate.NotBefore.ToUniversalTime()
        NotAfter              = $certificate.NotAfter.ToUniversalTime()
        HasPrivateKey         = $certificate.HasPrivateKey
        KeySize               = $certificate.PublicKey.Key.KeySize
        KeyProvider           = $provider
        KeyFile               = $keyFile
        NetworkServiceCanRead = $networkServiceCanRead
    }
}
