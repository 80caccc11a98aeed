// Log Analytics + workspace-based Application Insights, reached by identity (local auth off: the app authenticates
// with APPLICATIONINSIGHTS_AUTHENTICATION_STRING and the Monitoring Metrics Publisher role), and an optional e-mail
// alert when activities end failed or poisoned.

param workspaceName string
param appInsightsName string
param actionGroupName string
param alertName string
param location string
param tags object = {}

@description('Daily ingestion cap in GB as a decimal string ("-1" for none).')
param logDailyCapGb string = '0.15'

@minValue(30)
@maxValue(730)
param logRetentionDays int = 30

@description('Where the failure alert goes; empty: no action group and no alert.')
param alertEmail string = ''

resource workspace 'Microsoft.OperationalInsights/workspaces@2023-09-01' = {
  name: workspaceName
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
  name: appInsightsName
  location: location
  tags: tags
  kind: 'web'
  properties: {
    Application_Type: 'web'
    WorkspaceResourceId: workspace.id
    IngestionMode: 'LogAnalytics'
    DisableLocalAuth: true // telemetry only with an Entra token (the app's identity), never the key alone
  }
}

resource actionGroup 'Microsoft.Insights/actionGroups@2023-01-01' = if (!empty(alertEmail)) {
  name: actionGroupName
  location: 'global'
  tags: tags
  properties: {
    enabled: true
    groupShortName: 'rk2strava'
    emailReceivers: [
      {
        name: 'owner'
        emailAddress: alertEmail
        useCommonAlertSchema: true
      }
    ]
  }
}

// Every change of an activity's status is one log line (shared/storage/activitylog.py log_change):
//   activity sync_id=<id> status=<status> source=<source> user=<user> attempts=<n> [error="..."]
// A message the host gave up on ends the same way: shared/live/worker.py handle_poison → sync.give_up saves status=failed
// with "...moved the message to the poison queue...". One that names no activity is logged as
// "failed queue message without an activity id: ..." (shared/live/sync.py give_up). Each activity counts once.
var failedActivitiesQuery = '''
let failed = traces
| where message startswith "activity " and message contains " status=failed "
| parse message with * "sync_id=" subject " " *;
let unidentified = traces
| where message startswith "failed queue message without an activity id"
| extend subject = strcat("message:", itemId);
union failed, unidentified
| summarize activities = dcount(subject)
'''

resource failedActivitiesAlert 'Microsoft.Insights/scheduledQueryRules@2023-12-01' = if (!empty(alertEmail)) {
  name: alertName
  location: location
  tags: tags
  kind: 'LogAlert'
  properties: {
    displayName: 'Runkeeper to Strava: activities failed'
    description: 'Activities ended failed (or their queue message was poisoned) in the last hour; the alert\'s value is how many. See which and why: GET https://<app>/api/activities?status=failed (with ?code=<function key> and your X-Api-Key), or `python -m shared.cli status --status failed`. Retry: POST /api/activities/<id>/retry or `python -m shared.cli retry --all-failed`.'
    severity: 2
    enabled: true
    scopes: [
      appInsights.id
    ]
    evaluationFrequency: 'PT1H'
    windowSize: 'PT1H'
    // At most one e-mail an hour: after firing, actions are muted for an hour (muting needs autoMitigate off).
    muteActionsDuration: 'PT1H'
    autoMitigate: false
    criteria: {
      allOf: [
        {
          query: failedActivitiesQuery
          timeAggregation: 'Total'
          metricMeasureColumn: 'activities'
          operator: 'GreaterThan'
          threshold: 0
          failingPeriods: {
            numberOfEvaluationPeriods: 1
            minFailingPeriodsToAlert: 1
          }
        }
      ]
    }
    actions: {
      actionGroups: [
        actionGroup.id
      ]
      customProperties: {
        where: 'GET /api/activities?status=failed, or python -m shared.cli status'
      }
    }
  }
}

output appInsightsName string = appInsights.name
// Not a secret (it names the resource; with local auth off it cannot send telemetry by itself).
output appInsightsConnectionString string = appInsights.properties.ConnectionString
output workspaceName string = workspace.name
