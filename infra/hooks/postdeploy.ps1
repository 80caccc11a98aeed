# azd postdeploy hook (PowerShell; postdeploy.sh is the POSIX twin): after `azd up` / `azd deploy`, print the
# three things still to do by hand. Reads main.bicep's outputs, which azd keeps in the environment.
# The function key is read with the Azure CLI (`az login` as the same account); without it, the command is printed.
# The app's own key (SYNC_API_KEY) is never printed: `azd env get-value SYNC_API_KEY` shows it when you need it.
$app = $env:AZURE_FUNCTION_APP_NAME
$group = $env:AZURE_RESOURCE_GROUP
$keysCommand = "az functionapp function keys list --resource-group $group --name $app --function-name runkeeper --query default --output tsv"

$code = ''
if (Get-Command az -ErrorAction SilentlyContinue) {
    # Right after a deployment the host may not have listed its functions yet: try for about a minute.
    for ($try = 0; $try -lt 6 -and -not $code; $try++) {
        $code = (az functionapp function keys list --resource-group $group --name $app `
                --function-name runkeeper --query default --output tsv 2>$null)
        if ($LASTEXITCODE -ne 0) { $code = '' }
        if (-not $code) { Start-Sleep -Seconds 10 }
    }
}

$api = $env:RUNKEEPER_URL -replace '/runkeeper$', ''
Write-Host ''
Write-Host "Deployed $app. Three steps left:"
Write-Host ''
Write-Host '1. Strava: in your API application (https://www.strava.com/settings/api) set'
Write-Host "   Authorization Callback Domain to:  $($env:STRAVA_CALLBACK_DOMAIN)"
Write-Host ''
Write-Host '2. Connect your Strava account: open in a browser, with your key appended'
Write-Host '   (azd env get-value SYNC_API_KEY shows it):'
Write-Host "   $($env:STRAVA_CONNECT_URL)?key=<your SYNC_API_KEY>"
Write-Host ''
Write-Host '3. Zapier: post each Runkeeper activity to'
if ($code) {
    Write-Host "   $($env:RUNKEEPER_URL)?code=$code"
} else {
    Write-Host "   $($env:RUNKEEPER_URL)?code=<function key>"
    Write-Host "   (the function key: $keysCommand)"
}
Write-Host '   with the header X-Api-Key: <your SYNC_API_KEY> (README "Zapier set-up").'
Write-Host ''
Write-Host "Check: curl -H `"X-Api-Key: <your SYNC_API_KEY>`" `"$api/activities?code=<function key>`""
Write-Host "Your activities page (sign in with your SYNC_API_KEY): $api/page"
