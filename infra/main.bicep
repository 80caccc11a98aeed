// Runkeeper → Strava sync on a Linux Consumption plan: storage, Log Analytics + Application Insights,
// the plan and the function app with every setting shared/settings.py reads.
//
// Deploy (see README "Deploy to Azure"):
//   az deployment group create -g <rg> -f infra/main.bicep -p infra/main.parameters.json
// Secrets are parameters only: never put real values in a committed file.

targetScope = 'resourceGroup'

@description('Name of the function app; it becomes <name>.azurewebsites.net, so it must be globally unique.')
@minLength(2)
@maxLength(60)
param functionAppName string = 'rk2strava-${uniqueString(resourceGroup().id)}'

@description('Azure region for every resource.')
param location string = resourceGroup().location

@description('Python version of the Functions worker (Linux Consumption supports up to 3.12).')
@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.11'

@description('The key Zapier and the owner send as X-Api-Key (SYNC_API_KEY). A long random string.')
@secure()
@minLength(16)
param syncApiKey string

@description('Client id of your Strava API application (STRAVA_CLIENT_ID).')
@secure()
@minLength(1)
param stravaClientId string

@description('Client secret of your Strava API application (STRAVA_CLIENT_SECRET).')
@secure()
@minLength(1)
param stravaClientSecret string

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

@description('Most instances the Consumption plan may scale out to: one runner needs very few, and fewer instances mean fewer racing Strava token refreshes.')
@minValue(1)
@maxValue(20)
param maxInstances int = 2

@description('Daily ingestion cap of the Log Analytics workspace in GB, as a decimal string ("-1" for none). The default keeps a month well inside the 5 GB free allowance.')
param logDailyCapGb string = '0.15'

@description('Days the Log Analytics workspace keeps logs (30 is free).')
@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Tags put on every resource.')
param tags object = {
  app: 'runkeeper-strava-sync'
}

// Storage account names: 3-24 lowercase letters and digits, globally unique.
var storageAccountName = take('strk${uniqueString(resourceGroup().id, functionAppName)}', 24)
var storageConnectionString = 'DefaultEndpointsProtocol=https;AccountName=${storage.name};EndpointSuffix=${environment().suffixes.storage};AccountKey=${storage.listKeys().keys[0].value}'
var hostName = functionApp.properties.defaultHostName

resource storage 'Microsoft.Storage/storageAccounts@2023-05-01' = {
  name: storageAccountName
  location: location
  tags: tags
  kind: 'StorageV2'
  sku: {
    name: 'Standard_LRS'
  }
  properties: {
    accessTier: 'Hot'
    supportsHttpsTrafficOnly: true
    minimumTlsVersion: 'TLS1_2'
    allowBlobPublicAccess: false
    // The Functions host and the app use a connection string (AzureWebJobsStorage), which needs shared keys.
    allowSharedKeyAccess: true
    publicNetworkAccess: 'Enabled'
  }
}

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: '${functionAppName}-logs'
  location: location
  tags: tags
  properties: {
    sku: {
      name: 'PerGB2018'
    }
    retentionInDays: logRetentionDays
    workspaceCapping: {
      dailyQuotaGb: json(logDailyCapGb)
    }
  }
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' = {
  name: '${functionAppName}-insights'
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
  }
}

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: '${functionAppName}-plan'
  location: location
  tags: tags
  sku: {
    name: 'Y1'
    tier: 'Dynamic'
    size: 'Y1'
    family: 'Y'
  }
  properties: {
    computeMode: 'Dynamic'
    reserved: true // Linux
  }
}

// Linux Consumption takes neither WEBSITE_CONTENTAZUREFILECONNECTIONSTRING nor WEBSITE_CONTENTSHARE (those are for
// Windows Consumption and Elastic Premium); `func azure functionapp publish` sets WEBSITE_RUN_FROM_PACKAGE itself.
resource functionApp 'Microsoft.Web/sites@2024-04-01' = {
  name: functionAppName
  location: location
  tags: tags
  kind: 'functionapp,linux'
  properties: {
    serverFarmId: plan.id
    reserved: true
    httpsOnly: true
    clientAffinityEnabled: false
    siteConfig: {
      linuxFxVersion: 'Python|${pythonVersion}'
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      http20Enabled: true
      functionAppScaleLimit: maxInstances
      appSettings: [
        {
          name: 'FUNCTIONS_EXTENSION_VERSION'
          value: '~4'
        }
        {
          name: 'FUNCTIONS_WORKER_RUNTIME'
          value: 'python'
        }
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsights.properties.ConnectionString
        }
        {
          name: 'AzureWebJobsStorage'
          value: storageConnectionString
        }
        {
          name: 'SYNC_API_KEY'
          value: syncApiKey
        }
        {
          name: 'STRAVA_CLIENT_ID'
          value: stravaClientId
        }
        {
          name: 'STRAVA_CLIENT_SECRET'
          value: stravaClientSecret
        }
        {
          name: 'STRAVA_BASE_URL'
          value: stravaBaseUrl
        }
        {
          name: 'ACTIVITY_TIMEZONE'
          value: activityTimezone
        }
        {
          name: 'ENRICH_WEATHER'
          value: enrichWeather
        }
        {
          name: 'OPEN_METEO_BASE_URL'
          value: openMeteoBaseUrl
        }
      ]
    }
  }
}

// FTP is off (ftpsState); also refuse FTP basic-auth credentials. SCM basic auth stays as is, for `func ... publish`.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: functionApp
  name: 'ftp'
  properties: {
    allow: false
  }
}

@description('The function app name, for `func azure functionapp publish <name> --python`.')
output functionAppName string = functionApp.name

@description('Zapier posts here; add ?code=<function key> (see README).')
output runkeeperUrl string = 'https://${hostName}/api/runkeeper'

@description('Open once in a browser with ?key=<SYNC_API_KEY> to connect Strava.')
output stravaConnectUrl string = 'https://${hostName}/api/strava/connect'

@description('Put this in your Strava API application\'s "Authorization Callback Domain".')
output stravaCallbackDomain string = hostName
