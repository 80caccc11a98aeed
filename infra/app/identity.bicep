// The app's one credential: a user-assigned managed identity. The function app runs as it (storage, the deployment
// package, Key Vault references, Application Insights); its roles are in rbac.bicep.

param name string
param location string
param tags object = {}

resource identity 'Microsoft.ManagedIdentity/userAssignedIdentities@2023-01-31' = {
  name: name
  location: location
  tags: tags
}

output id string = identity.id
output clientId string = identity.properties.clientId
output principalId string = identity.properties.principalId
