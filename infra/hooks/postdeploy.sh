#!/bin/sh
# azd postdeploy hook (POSIX sh; postdeploy.ps1 is the Windows twin): after `azd up` / `azd deploy`, print the
# three things still to do by hand. Reads main.bicep's outputs, which azd keeps in the environment.
# The function key is read with the Azure CLI (`az login` as the same account); without it, the command is printed.
# The app's own key (SYNC_API_KEY) is never printed: `azd env get-value SYNC_API_KEY` shows it when you need it.
set -u

app="${AZURE_FUNCTION_APP_NAME:-}"
group="${AZURE_RESOURCE_GROUP:-}"
keys_command="az functionapp function keys list --resource-group $group --name $app --function-name runkeeper --query default --output tsv"

code=""
if command -v az >/dev/null 2>&1; then
    # Right after a deployment the host may not have listed its functions yet: try for about a minute.
    tries=0
    while [ "$tries" -lt 6 ]; do
        code=$(az functionapp function keys list --resource-group "$group" --name "$app" \
            --function-name runkeeper --query default --output tsv 2>/dev/null) && [ -n "$code" ] && break
        code=""
        tries=$((tries + 1))
        sleep 10
    done
fi

echo
echo "Deployed $app. Three steps left:"
echo
echo "1. Strava: in your API application (https://www.strava.com/settings/api) set"
echo "   Authorization Callback Domain to:  ${STRAVA_CALLBACK_DOMAIN:-}"
echo
echo "2. Connect your Strava account: open in a browser, with your key appended"
echo "   (azd env get-value SYNC_API_KEY shows it):"
echo "   ${STRAVA_CONNECT_URL:-}?key=<your SYNC_API_KEY>"
echo
echo "3. Zapier: post each Runkeeper activity to"
if [ -n "$code" ]; then
    echo "   ${RUNKEEPER_URL:-}?code=$code"
else
    echo "   ${RUNKEEPER_URL:-}?code=<function key>"
    echo "   (the function key: $keys_command)"
fi
echo "   with the header X-Api-Key: <your SYNC_API_KEY> (README \"Zapier set-up\")."
echo
echo "Check: curl -H \"X-Api-Key: <your SYNC_API_KEY>\" \"${RUNKEEPER_URL%/runkeeper}/activities?code=<function key>\""
echo "Your activities page (sign in with your SYNC_API_KEY): ${RUNKEEPER_URL%/runkeeper}/page"
