# runbook-template: sharepoint/get-partner-metadata v1
param(
    [Parameter(Mandatory = $true)] [string] $Url
)
# Downloads a partner's JSON metadata document (the tenant's ACS metadata, another farm's, Exchange's
# or Skype's) from the farm server itself, as New-SPTrustedSecurityTokenIssuer -MetadataEndPoint,
# New-SPTrustedRootAuthority -MetadataEndPoint and the ACS proxy will: from this
# process, through the server's proxy settings and its TLS protocols. The runbook's own host may
# reach the endpoint when the farm cannot; asking here finds that out before anything changes.
# Returns the document as text; the runbook parses it.
$ErrorActionPreference = 'Stop'

# The server's TLS protocol settings are left as they are: the cmdlets download with them as they
# are, so a server not set up for TLS 1.2 (strong cryptography off) fails here as it would there.
$client = New-Object -TypeName System.Net.WebClient
$client.Headers.Add('Accept', 'application/json')
$client.Encoding = [System.Text.Encoding]::UTF8
try {
    [pscustomobject]@{
        Url     = $Url
        Content = $client.DownloadString($Url)
    }
}
finally {
    $client.Dispose()
}
