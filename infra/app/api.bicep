// The Flex Consumption plan (FC1, Linux) and the function app. On Flex the runtime, scale and deployment package are
// properties (functionAppConfig), not app settings: FUNCTIONS_WORKER_RUNTIME, FUNCTIONS_EXTENSION_VERSION,
// WEBSITE_RUN_FROM_PACKAGE, WEBSITE_CONTENT* and linuxFxVersion are not set (Flex rejects or ignores them).

param name string
param planName string
param location string
param tags object = {}

@description('Resource id of the user-assigned identity the app runs as.')
param identityId string
@description('Client id of that identity (the app settings name it so the host and the code pick it, not another).')
param identityClientId string

param storageBlobEndpoint string
param storageQueueEndpoint string
param storageTableEndpoint string
param deploymentContainerName string

@description('Application Insights connection string (not a secret: local auth is off, the identity authenticates).')
param appInsightsConnectionString string

@description('Versionless Key Vault URI of the Strava client secret.')
param stravaClientSecretUri string
@description('Versionless Key Vault URI of the app\'s API key.')
param syncApiKeyUri string

param stravaClientId string
param stravaBaseUrl string
param activityTimezone string
param enrichWeather string
param openMeteoBaseUrl string
param stravaGear string
param stravaMute string
param stravaAthleteLimit string

@allowed([
  '3.11'
  '3.12'
])
param pythonVersion string = '3.12'

@allowed([
  512
  2048
  4096
])
param instanceMemoryMB int = 2048

@minValue(1)
param maximumInstanceCount int = 2

@minValue(1)
param httpPerInstanceConcurrency int = 4

@allowed([
  0
  1
])
param alwaysReady int = 0

// alwaysReady 1: one instance of the HTTP group ('http': all HTTP functions scale together) always running.
var alwaysReadyInstances = (alwaysReady == 1) ? [
  {
    name: 'http'
    instanceCount: 1
  }
] : []

resource plan 'Microsoft.Web/serverfarms@2024-04-01' = {
  name: planName
  location: location
  tags: tags
  kind: 'functionapp'
  sku: {
    name: 'FC1'
    tier: 'FlexConsumption'
  }
  properties: {
    reserved: true // Linux
  }
}

resource site 'Microsoft.Web/sites@2024-04-01' = {
  name: name
  location: location
  tags: union(tags, {
    'azd-service-name': 'api' // azure.yaml's service: azd deploys the code here
  })
  kind: 'functionapp,linux'
  identity: {
    type: 'UserAssigned'
    userAssignedIdentities: {
      '${identityId}': {}
    }
  }
  properties: {
    serverFarmId: plan.id
    httpsOnly: true
    clientAffinityEnabled: false
    // Key Vault references are resolved as this identity (it has Key Vault Secrets User, rbac.bicep).
    keyVaultReferenceIdentity: identityId
    functionAppConfig: {
      deployment: {
        storage: {
          type: 'blobContainer'
          value: '${storageBlobEndpoint}${deploymentContainerName}'
          authentication: {
            type: 'UserAssignedIdentity'
            userAssignedIdentityResourceId: identityId
          }
        }
      }
      runtime: {
        name: 'python'
        version: pythonVersion
      }
      scaleAndConcurrency: {
        instanceMemoryMB: instanceMemoryMB
        maximumInstanceCount: maximumInstanceCount
        // One always-ready instance for the HTTP group (all HTTP functions scale together) keeps Zapier's first post
        // after idle free of a cold start; the queue functions stay on demand either way.
        alwaysReady: alwaysReadyInstances
        triggers: {
          http: {
            perInstanceConcurrency: httpPerInstanceConcurrency
          }
        }
      }
    }
    siteConfig: {
      minTlsVersion: '1.2'
      scmMinTlsVersion: '1.2'
      ftpsState: 'Disabled'
      appSettings: [
        // Identity-based storage for the host's triggers and the app's own clients (shared/storage/clients.py): the three
        // service URIs, the managed identity, and which one (a user-assigned identity needs its client id).
        {
          name: 'AzureWebJobsStorage__blobServiceUri'
          value: storageBlobEndpoint
        }
        {
          name: 'AzureWebJobsStorage__queueServiceUri'
          value: storageQueueEndpoint
        }
        {
          name: 'AzureWebJobsStorage__tableServiceUri'
          value: storageTableEndpoint
        }
        {
          name: 'AzureWebJobsStorage__credential'
          value: 'managedidentity'
        }
        {
          name: 'AzureWebJobsStorage__clientId'
          value: identityClientId
        }
        // Telemetry with an Entra token of the same identity (Monitoring Metrics Publisher, rbac.bicep).
        {
          name: 'APPLICATIONINSIGHTS_CONNECTION_STRING'
          value: appInsightsConnectionString
        }
        {
          name: 'APPLICATIONINSIGHTS_AUTHENTICATION_STRING'
          value: 'ClientId=${identityClientId};Authorization=AAD'
        }
        // Secrets: Key Vault references, resolved by the platform into plain environment variables for the code.
        {
          name: 'STRAVA_CLIENT_SECRET'
          value: '@Microsoft.KeyVault(SecretUri=${stravaClientSecretUri})'
        }
        {
          name: 'SYNC_API_KEY'
          value: '@Microsoft.KeyVault(SecretUri=${syncApiKeyUri})'
        }
        // Plain settings.
        {
          name: 'STRAVA_CLIENT_ID'
          value: stravaClientId
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
        {
          name: 'STRAVA_GEAR'
          value: stravaGear
        }
        {
          name: 'STRAVA_MUTE'
          value: stravaMute
        }
        {
          name: 'STRAVA_ATHLETE_LIMIT'
          value: stravaAthleteLimit
        }
      ]
    }
  }
}

// No basic-auth publishing at all: azd and Core Tools deploy to Flex with Entra tokens.
resource ftpCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'ftp'
  properties: {
    allow: false
  }
}

resource scmCredentials 'Microsoft.Web/sites/basicPublishingCredentialsPolicies@2024-04-01' = {
  parent: site
  name: 'scm'
  properties: {
    allow: false
  }
}

output name string = site.name
output hostName string = site.properties.defaultHostName
