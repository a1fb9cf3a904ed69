# runbook-template: oos/export-certificate v1
param(
    [Parameter(Mandatory = $true)] [string] $Thumbprint
)
# Exports the public part of a certificate in LocalMachine\My as DER (-Type CERT: no private key
# is ever written), the .cer SharePoint registers as the trusted issuer. The file is temporary:
# its bytes come back as RawData.
$ErrorActionPreference = 'Stop'

$certificate = Get-Item -Path "Cert:\LocalMachine\My\$Thumbprint"
$path = Join-Path ([System.IO.Path]::GetTempPath()) ([System.IO.Path]::GetRandomFileName() + '.cer')
try {
    Export-Certificate -Cert $certificate -FilePath $path -Type CERT | Out-Null
    [pscustomobject]@{
        Thumbprint = $certificate.Thumbprint
        RawData    = [System.IO.File]::ReadAllBytes($path)
    }
}
finally {
    Remove-Item -Path $path -Force -ErrorAction SilentlyContinue
}
