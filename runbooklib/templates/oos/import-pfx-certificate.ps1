# runbook-template: oos/import-pfx-certificate v1
param(
    [Parameter(Mandatory = $true)] [byte[]] $PfxBytes,
    [Parameter(Mandatory = $true)] [securestring] $Password,
    [Parameter(Mandatory = $true)] [string] $FriendlyName
)
# Imports a PFX (certificate and private key) into LocalMachine\My and gives it the friendly name
# Office Online Server will look it up by. Import-PfxCertificate reads a file, so the bytes are
# written to a temporary file that is deleted whatever happens. The password arrives as a
# SecureString and never becomes plain text here. -Exportable matches what an IIS Manager import
# does, and lets the key be copied to another farm member later.
$ErrorActionPreference = 'Stop'

$path = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName() + '.pfx')
try {
    [System.IO.File]::WriteAllBytes($path, $PfxBytes)
    $certificate = Import-PfxCertificate -FilePath $path -CertStoreLocation 'Cert:\LocalMachine\My' -Password $Password -Exportable |
        Select-Object -First 1
    $stored = Get-Item -Path "Cert:\LocalMachine\My\$($certificate.Thumbprint)"
    $stored.FriendlyName = $FriendlyName
    [pscustomobject]@{
        Thumbprint   = $stored.Thumbprint
        FriendlyName = $stored.FriendlyName
    }
}
finally {
    Remove-Item -Path $path -Force -ErrorAction SilentlyContinue
}
