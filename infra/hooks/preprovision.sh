#!/bin/sh
# azd preprovision hook (POSIX sh; preprovision.ps1 is the Windows twin).
# Before `azd provision` / `azd up` creates anything, make sure the azd environment holds what
# infra/main.parameters.json asks for:
#   - STRAVA_CLIENT_ID and STRAVA_CLIENT_SECRET: your Strava API application's; stop and say how to set them.
#   - SYNC_API_KEY: the app's own key; generated (random, 43 characters) when missing, never printed.
# azd hands the environment's values to hooks as environment variables, and rereads the environment afterwards.
set -eu

missing=""
[ -n "${STRAVA_CLIENT_ID:-}" ] || missing="$missing STRAVA_CLIENT_ID"
[ -n "${STRAVA_CLIENT_SECRET:-}" ] || missing="$missing STRAVA_CLIENT_SECRET"
if [ -n "$missing" ]; then
    echo "Missing in the azd environment:$missing" >&2
    echo "Create a Strava API application at https://www.strava.com/settings/api, then run:" >&2
    echo "    azd env set STRAVA_CLIENT_ID <its Client ID>" >&2
    echo "    azd env set STRAVA_CLIENT_SECRET <its Client Secret>" >&2
    echo "and run azd up again." >&2
    exit 1
fi

if [ -z "${SYNC_API_KEY:-}" ]; then
    python=$(command -v python3 || command -v python || true)
    if [ -z "$python" ]; then
        echo "SYNC_API_KEY is not set and no python3 was found to generate one; set it yourself:" >&2
        echo "    azd env set SYNC_API_KEY <a long random string, at least 16 characters>" >&2
        exit 1
    fi
    key=$("$python" -c 'import secrets; print(secrets.token_urlsafe(32))')
    [ -n "$key" ]
    azd env set SYNC_API_KEY "$key" >/dev/null
    echo "Generated SYNC_API_KEY (see it with: azd env get-value SYNC_API_KEY)."
fi
