# runbook-template: sharepoint/get-workflow-service v1
param(
    [Parameter(Mandatory = $true)] [string] $Site
)
# Whether the farm is paired with Workflow Manager, and at which address. A realm change breaks
# the pairing (KB 4010011) although Workflow Manager's issuer is metadata-based; the fix is
# Register-SPWorkflowService -Force. Nothing is returned when the farm has no workflow service.
#
# UNCONFIRMED: the proxy's TypeName and GetWorkflowServiceAddress(SPSite) returning the address
# the farm was registered with. See the Workflow Manager entries in runbooklib/lab/sharepoint/texts.py.
$ErrorActionPreference = 'Stop'

$proxy = Get-SPServiceApplicationProxy | Where-Object { $_.TypeName -eq 'Workflow Service Application Proxy' } |
    Select-Object -First 1
if ($null -ne $proxy) {
    $spSite = Get-SPSite -Identity $Site
    try {
        [pscustomobject]@{
            Name            = $proxy.Name
            # UNCONFIRMED (GetWorkflowServiceAddress)
            WorkflowHostUri = [string]$proxy.GetWorkflowServiceAddress($spSite)
        }
    }
    finally {
        $spSite.Dispose()
    }
}
