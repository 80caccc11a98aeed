# azd preprovision hook (PowerShell; preprovision.sh is the POSIX twin).
# Before `azd provision` / `azd up` creates anything, make sure the azd environment holds what
# infra/main.parameters.json asks for:
#   - STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET: your Strava API application's; stop and say how to set them.
#   - SYNC_API_KEY: the app's own key; generated (random, 43 characters) when missing, never printed.
# azd hands the environment's values to hooks as environment variables, and rereads the environment afterwards.
$ErrorActionPreference = 'Stop'

$missing = @('STRAVA_CLIENT_ID', 'STRAVA_CLIENT_SECRET') | Where-Object { -not [Environment]::GetEnvironmentVariable($_) }
if ($missing) {
    [Console]::Error.WriteLine("Missing in the azd environment: $($missing -join ' ')")
    [Console]::Error.WriteLine('Create a Strava API application at https://www.strava.com/settings/api, then run:')
    [Console]::Error.WriteLine('    azd env set STRAVA_CLIENT_ID <its Client ID>')
    [Console]::Error.WriteLine('    azd env set STRAVA_CLIENT_SECRET <its Client Secret>')
    [Console]::Error.WriteLine('and run azd up again.')
    exit 1
}

if (-not $env:SYNC_API_KEY) {
    # 32 random bytes as URL-safe base64 without padding: the same shape as Python's secrets.token_urlsafe(32).
    $bytes = New-Object byte[] 32
    [System.Security.Cryptography.RandomNumberGenerator]::Create().GetBytes($bytes)
    $key = [Convert]::ToBase64String($bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_')
    azd env set SYNC_API_KEY $key | Out-Null
    if ($LASTEXITCODE -ne 0) { exit $LASTEXITCODE }
    Write-Host 'Generated SYNC_API_KEY (see it with: azd env get-value SYNC_API_KEY).'
}
