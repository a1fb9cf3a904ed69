# runbook-template: sharepoint/get-proxy-group-membership v1
param()
# Every service application proxy with its .NET type and whether it is a member of the farm's
# default proxy group. GetType() and group membership only mean something on the server.
# Membership is read from the group's DefaultProxies, as Microsoft's Onboard-CloudHybridSearch does.
$ErrorActionPreference = 'Stop'

$defaultGroup = Get-SPServiceApplicationProxyGroup -Default
$memberIds = @($defaultGroup.DefaultProxies | ForEach-Object { $_.Id })
foreach ($proxy in Get-SPServiceApplicationProxy) {
    $metadataUri = $null
    if ($proxy.PSObject.Properties['MetadataEndpointUri'] -and $proxy.MetadataEndpointUri) {
        $metadataUri = $proxy.MetadataEndpointUri.OriginalString
    }
    [pscustomobject]@{
        Name                = $proxy.Name
        Id                  = $proxy.Id
        TypeName            = $proxy.TypeName
        Type                = $proxy.GetType().FullName
        MetadataEndpointUri = $metadataUri
        InDefaultGroup      = $memberIds -contains $proxy.Id
    }
}
