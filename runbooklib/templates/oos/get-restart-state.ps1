# runbook-template: oos/get-restart-state v1
param()
# Whether this server still runs with farm settings older than the ones it has: Office Online
# Server reads its settings when IIS starts, so a restart is pending when the farm's settings file
# was written after the IIS service (W3SVC) last started.
$ErrorActionPreference = 'Stop'

$settings = Get-Item -Path "$env:ProgramData\Microsoft\OfficeWebApps\Data\FarmState\settings.xml"
$service = Get-CimInstance -ClassName Win32_Service -Filter "Name='W3SVC'"
$process = Get-Process -Id $service.ProcessId
$written = $settings.LastWriteTimeUtc
$started = $process.StartTime.ToUniversalTime()
[pscustomobject]@{
    SettingsWrittenUtc = $written
    IisStartedUtc      = $started
    RestartPending     = $started -lt $written
}
