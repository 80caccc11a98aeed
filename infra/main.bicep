// Runkeeper → Strava sync on the Azure Functions Flex Consumption plan (FC1), keyless.
//
// `azd up` (see azure.yaml and README "Deploy to Azure") provisions this file at subscription scope:
// one resource group `rg-<environment>` holding
//   - a user-assigned managed identity: the app's only credential (storage, Key Vault, App Insights);
//   - a storage account that refuses Shared Key, with every queue, table and container the app uses;
//   - a Key Vault (RBAC mode) with the Strava client secret and the app's API key;
//   - Log Analytics + workspace-based Application Insights (identity auth), and an optional e-mail alert;
//   - the Flex Consumption plan and the function app.
// Laid out like Microsoft's template Azure-Samples/functions-quickstart-python-http-azd, with plain resources in
// local modules (infra/app/*.bicep) instead of registry modules, so tests/test_infra.py can parse all of it.
//
// Secrets only ever arrive as @secure() parameters (azd reads them from its environment) and go straight into
// Key Vault; no output, default or app setting holds one.

targetScope = 'subscription'

@minLength(1)
@maxLength(64)
@description('Name of the azd environment; names the resource group (rg-<name>) and seeds every resource name.')
param environmentName string

@minLength(1)
@description('Azure region for everything. It must offer Flex Consumption: az functionapp list-flexconsumption-locations -o table')
@metadata({
  azd: {
    type: 'location'
  }
})
param location string

@description('Object id of the person deploying (azd passes AZURE_PRINCIPAL_ID). Non-empty: they get the storage data roles the command line needs (import, status, retry) after `az login`. Empty: no one does.')
param principalId string = ''

// --- the app's settings (shared/config.py) ---

@description('Client id of your Strava API application (STRAVA_CLIENT_ID). Not a secret: it appears in every authorize URL.')
@minLength(1)
param stravaClientId string

@description('Client secret of your Strava API application; stored in Key Vault as strava-client-secret.')
@secure()
@minLength(1)
param stravaClientSecret string

@description('The key Zapier and the owner send as X-Api-Key (SYNC_API_KEY); stored in Key Vault as sync-api-key. The preprovision hook generates one.')
@secure()
@minLength(16)
param syncApiKey string

@description('Strava base URL (STRAVA_BASE_URL); only tests point it elsewhere.')
param stravaBaseUrl string = 'https://www.strava.com'

@description('IANA time zone for activity times without an offset and for activity names (ACTIVITY_TIMEZONE).')
param activityTimezone string = 'Europe/London'

@description('true: add air temperature from the Open-Meteo weather API to each uploaded trackpoint (ENRICH_WEATHER).')
@allowed([
  'true'
  'false'
])
param enrichWeather string = 'false'

@description('One host serving Open-Meteo /v1/archive and /v1/forecast (OPEN_METEO_BASE_URL); empty: the public hosts.')
param openMeteoBaseUrl string = ''

@description('Gear per sport after upload (STRAVA_GEAR), e.g. Run=g12345,Ride=b67890; empty: none.')
param stravaGear string = ''

@description('Strava sport types muted (hidden from followers\' home feeds) after upload (STRAVA_MUTE); empty: none.')
param stravaMute string = ''

@description('Athletes the Strava application may connect (STRAVA_ATHLETE_LIMIT): 10 with Standard Access.')
param stravaAthleteLimit string = '10'

// --- hosting ---

@description('Python of the Functions worker. 3.12 is what Microsoft\'s Flex template uses; the app also runs on 3.11 (pyproject.toml).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.12'

// Memory: the worker's peak for a 200,000-point activity (the largest the tests use) was measured at 261 MB of RSS,
// ~60 MB of it the interpreter with the app and the SDKs imported (README "Performance"); host.json lets one instance
// run two activities at once (batchSize 2): 417-446 MB measured for the Python worker. The Functions host (.NET)
// shares the instance and typically takes another 150-250 MB: ~620-720 MB at the peak. 512 MB would be at or past its
// limit with a single such activity (415-515 MB) and gets a quarter of a vCPU (the ~1 s conversion would take ~4 s);
// 2048 MB (one vCPU) leaves ~3x headroom over the two-activity peak. Always-ready cost grows with this size (README).
@description('Memory of each instance in MB (Flex Consumption sizes). 2048: two 200,000-point activities at once with ~3x headroom; 512 is too tight for even one beside the Functions host.')
@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

// Scale: Flex applies this limit to each group that scales on its own (the HTTP functions together; each queue
// function alone). The queue worker runs host.json's batchSize (2) activities per instance (newBatchThreshold 0), so at
// most 2 x maximumInstanceCount uploads are in flight, ~2 Strava calls each. Strava's default budget is 200 requests
// / 15 min and 2,000 a day (reads 100 / 15 min, 1,000 a day) for the whole app. Each worker learns the app-wide usage
// from the X-RateLimit headers of every answer (shared/strava/ratelimit.py) and defers an activity to the next window when
// it is spent (a 429 defers too), so more instances add no requests: only more workers that start without knowing
// the budget, and more racing for one athlete's token refresh. One runner needs very few.
@description('Most instances each scale group (HTTP functions; each queue function) may use. Low on purpose: Strava\'s rate limits belong to the whole app, not to an instance.')
@minValue(1)
@maxValue(20)
param maximumInstanceCount int = 2

// Python's default HTTP concurrency on Flex is 1 request per instance, so a second request arriving during the first
// would be sent to a new (cold) instance even with an always-ready one. The HTTP functions are short and I/O-bound
// (the ack answers in milliseconds): let one instance take a few at once.
@description('Concurrent HTTP requests per instance before Flex adds another instance (Python\'s default is 1).')
@minValue(1)
@maxValue(16)
param httpPerInstanceConcurrency int = 4

// 0: scale to zero; a post after ~30 s or more of idle waits for a cold start (seconds), beyond Zapier's free one
// second. 1: one instance of the HTTP group always running, billed at the always-ready baseline. README has the costs.
@description('Always-ready instances for the HTTP functions: 1 keeps Zapier\'s first post after idle inside its second (billed all month); 0 scales to zero (free at this volume, cold starts of seconds).')
@allowed([
  0
  1
])
param alwaysReady int = 0

// --- monitoring ---

@description('E-mail that gets an alert (at most once an hour) when an activity ends failed or poisoned. Empty: no alert.')
param alertEmail string = ''

@description('Daily ingestion cap of the Log Analytics workspace in GB, as a decimal string ("-1" for none). The default keeps a month well inside the 5 GB free allowance.')
param logDailyCapGb string = '0.15'

@description('Days the Log Analytics workspace keeps logs (30 is free).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

// --- Key Vault ---

@description('Key Vault purge protection. Off by default so `azd down --purge` can remove the vault; once on, it cannot be turned off and the vault name stays taken for the retention period.')
param keyVaultPurgeProtection bool = false

var abbrs = loadJsonContent('./abbreviations.json')
var resourceToken = toLower(uniqueString(subscription().id, environmentName, location))
var tags = {
  'azd-env-name': environmentName
  app: 'runkeeper-strava-sync'
}
var functionAppName = '${abbrs.webSitesFunctions}api-${resourceToken}'
// The Flex deployment package lives here (functionAppConfig.deployment.storage).
var deploymentContainerName = 'app-package-${take(functionAppName, 32)}-${take(toLower(uniqueString(functionAppName, resourceToken)), 7)}'

// Every queue, container and table the app uses, named as in shared/storage/clients.py (tests/test_infra.py compares them): the
// template creates them all, so the app never has to create one in Azure (its create-if-missing is for Azurite).
var activityQueue = 'runkeeper-activities' // store.ACTIVITY_QUEUE: the ack sends, sync_activity is triggered by it
var poisonQueue = 'runkeeper-activities-poison' // store.POISON_QUEUE: the host moves failed messages here
var payloadContainer = 'runkeeper-payloads' // store.PAYLOAD_CONTAINER: claim checks for big payloads, kept failures
var connectionsTable = 'stravaconnections' // store.CONNECTIONS_TABLE: Strava tokens
var activityLogTable = 'activitylog' // store.ACTIVITY_LOG_TABLE: one row per activity
var oauthStateTable = 'oauthstates' // store.OAUTH_STATE_TABLE: single-use OAuth states
var usersTable = 'syncusers' // store.USERS_TABLE: athletes' keys (hashed) and invitations

resource rg 'Microsoft.Resources/resourceGroups@2024-03-01' = {
  name: '${abbrs.resourcesResourceGroups}${environmentName}'
  location: location
  tags: tags
}

module identity './app/identity.bicep' = {
  name: 'identity'
  scope: rg
  params: {
    name: '${abbrs.managedIdentityUserAssignedIdentities}api-${resourceToken}'
    location: location
    tags: tags
  }
}

module storage './app/storage.bicep' = {
  name: 'storage'
  scope: rg
  params: {
    name: '${abbrs.storageStorageAccounts}${resourceToken}'
    location: location
    tags: tags
    containerNames: [
      deploymentContainerName
      payloadContainer
    ]
    queueNames: [
      activityQueue
      poisonQueue
    ]
    tableNames: [
      connectionsTable
      activityLogTable
      oauthStateTable
      usersTable
    ]
  }
}

module monitoring './app/monitoring.bicep' = {
  name: 'monitoring'
  scope: rg
  params: {
    workspaceName: '${abbrs.operationalInsightsWorkspaces}${resourceToken}'
    appInsightsName: '${abbrs.insightsComponents}${resourceToken}'
    actionGroupName: '${abbrs.insightsActionGroups}${resourceToken}'
    alertName: '${abbrs.insightsScheduledQueryRules}failed-activities-${resourceToken}'
    location: location
    tags: tags
    logDailyCapGb: logDailyCapGb
    logRetentionDays: logRetentionDays
    alertEmail: alertEmail
  }
}

module keyVault './app/keyvault.bicep' = {
  name: 'keyvault'
  scope: rg
  params: {
    name: '${abbrs.keyVaultVaults}${resourceToken}'
    location: location
    tags: tags
    purgeProtection: keyVaultPurgeProtection
    stravaClientSecret: stravaClientSecret
    syncApiKey: syncApiKey
  }
}

module rbac './app/rbac.bicep' = {
  name: 'rbac'
  scope: rg
  params: {
    storageAccountName: storage.outputs.name
    appInsightsName: monitoring.outputs.appInsightsName
    keyVaultName: keyVault.outputs.name
    appPrincipalId: identity.outputs.principalId
    userPrincipalId: principalId
  }
}

module api './app/api.bicep' = {
  name: 'api'
  scope: rg
  params: {
    name: functionAppName
    planName: '${abbrs.webServerFarms}${resourceToken}'
    location: location
    tags: tags
    identityId: identity.outputs.id
    identityClientId: identity.outputs.clientId
    storageBlobEndpoint: storage.outputs.blobEndpoint
    storageQueueEndpoint: storage.outputs.queueEndpoint
    storageTableEndpoint: storage.outputs.tableEndpoint
    deploymentContainerName: deploymentContainerName
    appInsightsConnectionString: monitoring.outputs.appInsightsConnectionString
    stravaClientSecretUri: keyVault.outputs.stravaClientSecretUri
    syncApiKeyUri: keyVault.outputs.syncApiKeyUri
    stravaClientId: stravaClientId
    stravaBaseUrl: stravaBaseUrl
    activityTimezone: activityTimezone
    enrichWeather: enrichWeather
    openMeteoBaseUrl: openMeteoBaseUrl
    stravaGear: stravaGear
    stravaMute: stravaMute
    stravaAthleteLimit: stravaAthleteLimit
    pythonVersion: pythonVersion
    instanceMemoryMB: instanceMemoryMB
    maximumInstanceCount: maximumInstanceCount
    httpPerInstanceConcurrency: httpPerInstanceConcurrency
    alwaysReady: alwaysReady
  }
  // The app reads storage and Key Vault at its first start: let the role assignments exist first.
  dependsOn: [
    rbac
  ]
}

// azd stores every output in the environment (.azure/<env>/.env); the hooks read them. None is a secret.
output AZURE_LOCATION string = location
output AZURE_TENANT_ID string = tenant().tenantId
output AZURE_RESOURCE_GROUP string = rg.name
output AZURE_FUNCTION_APP_NAME string = api.outputs.name
output SERVICE_API_NAME string = api.outputs.name
output AZURE_STORAGE_ACCOUNT_NAME string = storage.outputs.name
output AZURE_KEY_VAULT_NAME string = keyVault.outputs.name
@description('Zapier posts here; add ?code=<function key> (the postdeploy hook prints it).')
output RUNKEEPER_URL string = 'https://${api.outputs.hostName}/api/runkeeper'
@description('Open once in a browser with ?key=<SYNC_API_KEY> to connect Strava.')
output STRAVA_CONNECT_URL string = 'https://${api.outputs.hostName}/api/strava/connect'
@description('Your Strava API application\'s "Authorization Callback Domain".')
output STRAVA_CALLBACK_DOMAIN string = api.outputs.hostName
