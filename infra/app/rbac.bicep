// Role assignments: the least the app's managed identity needs, each for a named use in the code, and (when
// principalId is given) the data roles the command line needs from the deployer's laptop after `az login`.
// Nothing here grants Owner, Contributor or any control-plane role; nobody gets account keys (there are none).

param storageAccountName string
param appInsightsName string
param keyVaultName string

@description('Principal (object) id of the app\'s user-assigned managed identity.')
param appPrincipalId string

@description('Object id of the deploying user; empty: no user roles.')
param userPrincipalId string = ''

// Built-in role definition ids (the same in every tenant).
// Storage Blob Data Owner: the Functions host's own storage (AzureWebJobsStorage: blob leases for the host's
// singleton locks and queue-listener bookkeeping, for which Microsoft documents Owner), the Flex deployment package
// it reads at start (functionAppConfig.deployment), and the claim-check container store.PAYLOAD_CONTAINER
// (shared/storage/messages.py writes big payloads, the worker reads and deletes them, shared/storage/kept.py keeps failed ones).
var storageBlobDataOwner = 'b7e6dc6d-f1e8-4753-8033-0f276bb0955b'
// Storage Blob Data Contributor (the user): read, write and delete payload blobs from the command line
// (`retry` reads kept payloads, `import` of big activities writes them); no ownership or ACL rights.
var storageBlobDataContributor = 'ba92f5b4-2d11-453d-a403-e96b0029c9fe'
// Storage Queue Data Contributor: the queue triggers (shared/live/blueprint.py) on ACTIVITY_QUEUE and POISON_QUEUE
// (read, delete, update visibility), the ack and retries sending messages (shared/storage/messages.py), and the host moving a
// message to the poison queue.
var storageQueueDataContributor = '974c5e8b-45b9-4653-ba55-5f855dd0fb88'
// Storage Table Data Contributor: the activity log (shared/storage/activitylog.py), Strava tokens (shared/strava/tokens.py),
// athletes and invitations (shared/storage/users.py), OAuth states (shared/storage/oauthstates.py), the rate budget (shared/strava/ratelimit.py).
var storageTableDataContributor = '0a9a7e1f-b9d0-4cc4-a60d-0319b160aaa3'
// Monitoring Metrics Publisher: the host sends telemetry to Application Insights with an Entra token
// (APPLICATIONINSIGHTS_AUTHENTICATION_STRING in api.bicep; the component has local auth off).
var monitoringMetricsPublisher = '3913510d-42f4-4e42-8a64-420c390055eb'
// Key Vault Secrets User: the platform resolves the Key Vault references STRAVA_CLIENT_SECRET and SYNC_API_KEY
// (shared/config.py reads them from the environment) as the app's identity (keyVaultReferenceIdentity).
var keyVaultSecretsUser = '4633458b-17de-408a-b874-0445c86b69e6'

resource storageAccount 'Microsoft.Storage/storageAccounts@2023-05-01' existing = {
  name: storageAccountName
}

resource appInsights 'Microsoft.Insights/components@2020-02-02' existing = {
  name: appInsightsName
}

resource vault 'Microsoft.KeyVault/vaults@2023-07-01' existing = {
  name: keyVaultName
}

// --- the app's managed identity ---

resource appBlobOwner 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageBlobDataOwner)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataOwner)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(storageAccount.id, appPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appMetricsPublisher 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(appInsights.id, appPrincipalId, monitoringMetricsPublisher)
  scope: appInsights
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', monitoringMetricsPublisher)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

resource appSecretsUser 'Microsoft.Authorization/roleAssignments@2022-04-01' = {
  name: guid(vault.id, appPrincipalId, keyVaultSecretsUser)
  scope: vault
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', keyVaultSecretsUser)
    principalId: appPrincipalId
    principalType: 'ServicePrincipal'
  }
}

// --- the deploying user (optional): `python -m shared.cli import|status|retry` against Azure after `az login` ---
// No Key Vault role: the command line takes STRAVA_CLIENT_SECRET from `azd env get-value` (README).

resource userBlobContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageBlobDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageBlobDataContributor)
    principalId: userPrincipalId
    principalType: 'User'
  }
}

resource userQueueContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageQueueDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageQueueDataContributor)
    principalId: userPrincipalId
    principalType: 'User'
  }
}

resource userTableContributor 'Microsoft.Authorization/roleAssignments@2022-04-01' = if (!empty(userPrincipalId)) {
  name: guid(storageAccount.id, userPrincipalId, storageTableDataContributor)
  scope: storageAccount
  properties: {
    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions', storageTableDataContributor)
    principalId: userPrincipalId
    principalType: 'User'
  }
}
