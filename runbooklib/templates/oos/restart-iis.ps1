# runbook-template: oos/restart-iis v1
param()
# Restarts IIS on this server (iisreset), so Office Online Server takes its new farm settings.
# iisreset is a program, not a cmdlet: its output lines come back as they are, and a non-zero exit
# code is an error.
$ErrorActionPreference = 'Stop'

$output = & "$env:SystemRoot\System32\iisreset.exe" /noforce 2>&1
if ($LASTEXITCODE -ne 0) {
    throw "iisreset failed with exit code ${LASTEXITCODE}: $($output -join ' ')"
}
[pscustomobject]@{
    Output = @($output | ForEach-Object { [string]$_ })
}
