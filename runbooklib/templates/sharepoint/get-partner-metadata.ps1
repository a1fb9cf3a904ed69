# runbook-template: sharepoint/get-partner-metadata v1
param(
    [Parameter(Mandatory = $true)] [string] $Url
)
# Downloads a partner's S2S metadata document from this server, the way the farm itself will when
# New-SPTrustedSecurityTokenIssuer or New-SPTrustedRootAuthority is given -MetadataEndPoint: same
# network path, same proxy, same trusted certificate authorities. The document is returned as text
# for the runbook to judge; nothing on the farm changes.
$ErrorActionPreference = 'Stop'

$client = New-Object -TypeName System.Net.WebClient
try {
    $client.Headers.Add('Accept', 'application/json')
    $client.Encoding = [System.Text.Encoding]::UTF8
    [pscustomobject]@{
        Url     = $Url
        Content = $client.DownloadString($Url)
    }
}
finally {
    $client.Dispose()
}
