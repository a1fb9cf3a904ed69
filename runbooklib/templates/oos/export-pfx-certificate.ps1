# runbook-template: oos/export-pfx-certificate v1
param(
    [Parameter(Mandatory = $true)] [string] $Thumbprint,
    [Parameter(Mandatory = $true)] [securestring] $Password
)
# Exports a certificate with its private key (it was imported -Exportable) so the same
# certificate can be imported on another farm member: every member must sign with the same key.
# The temporary file is deleted whatever happens; the bytes come back protected by $Password.
$ErrorActionPreference = 'Stop'

$certificate = Get-Item -Path "Cert:\LocalMachine\My\$Thumbprint"
$path = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName() + '.pfx')
try {
    Export-PfxCertificate -Cert $certificate -FilePath $path -Password $Password | Out-Null
    [pscustomobject]@{
        Thumbprint = $certificate.Thumbprint
        PfxBytes   = [System.IO.File]::ReadAllBytes($path)
    }
}
finally {
    Remove-Item -Path $path -Force -ErrorAction SilentlyContinue
}
