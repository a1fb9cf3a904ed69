# runbook-template: oos/import-root-certificate v1
param(
    [Parameter(Mandatory = $true)] [byte[]] $CertificateRawData
)
# Trusts a self-signed certificate: its public part (DER, no key) goes into LocalMachine\Root.
# Import-Certificate reads a file, so the bytes go through a temporary .cer that is deleted after.
$ErrorActionPreference = 'Stop'

$path = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName() + '.cer')
try {
    [System.IO.File]::WriteAllBytes($path, $CertificateRawData)
    $certificate = Import-Certificate -FilePath $path -CertStoreLocation 'Cert:\LocalMachine\Root'
    [pscustomobject]@{
        Thumbprint = $certificate.Thumbprint
    }
}
finally {
    Remove-Item -Path $path -Force -ErrorAction SilentlyContinue
}
