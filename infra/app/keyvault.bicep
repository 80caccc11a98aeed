// Key Vault for the two secrets the app reads: the Strava client secret and its own API key. The function app's
// settings hold only Key Vault references (@Microsoft.KeyVault(SecretUri=...)), which the platform resolves with the
// app's managed identity (keyVaultReferenceIdentity in api.bicep, "Key Vault Secrets User" in rbac.bicep) and hands
// to the code as ordinary environment variables. RBAC mode: no access policies.

param name string
param location string
param tags object = {}

@description('Purge protection: once on, it cannot be turned off.')
param purgeProtection bool = false

@secure()
param stravaClientSecret string

@secure()
param syncApiKey string

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' = {
  name: name
  location: location
  tags: tags
  properties: {
    tenantId: subscription().tenantId
    sku: {
      family: 'A'
      name: 'standard'
    }
    enableRbacAuthorization: true
    enableSoftDelete: true
    softDeleteRetentionInDays: 7
    // Azure refuses an explicit false here; leaving it out means off.
    enablePurgeProtection: purgeProtection ? true : null
    publicNetworkAccess: 'Enabled'
    networkAcls: {
      defaultAction: 'Allow'
      bypass: 'AzureServices'
    }
  }
}

// Names use hyphens (Key Vault allows no underscores); the app settings in api.bicep map them to
// STRAVA_CLIENT_SECRET and SYNC_API_KEY.
resource stravaClientSecretEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'strava-client-secret'
  properties: {
    value: stravaClientSecret
    contentType: 'text/plain'
  }
}

resource syncApiKeyEntry 'Microsoft.KeyVault/vaults/secrets@2023-07-01' = {
  parent: vault
  name: 'sync-api-key'
  properties: {
    value: syncApiKey
    contentType: 'text/plain'
  }
}

output name string = vault.name
output id string = vault.id
// Versionless URIs: the app picks up a new version of a secret (the platform refreshes references within a day,
// or at once on a restart).
output stravaClientSecretUri string = stravaClientSecretEntry.properties.secretUri
output syncApiKeyUri string = syncApiKeyEntry.properties.secretUri
