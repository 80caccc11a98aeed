/**
 * runkeeper-strava-sync: the "Code by Zapier" (Run JavaScript) step of the Zap
 * "Runkeeper → New Activity" → this step. Paste this whole file as the step's code.
 *
 * Input Data (name on the left exactly as below; pick the Runkeeper field on the right, see the
 * README's "Zapier set-up" table):
 *   activityType, activityStartTimeIso, activityNotes,
 *   activityPathLatitude, activityPathLongitude, activityPathAltitude, activityPathTimestamp, activityPathType,
 *   activityHeartRateTimestamp, activityHeartRateBpm,
 *   apiEndpoint   https://<app>.azurewebsites.net/api/runkeeper?code=<function key>
 *   apiKey        your SYNC_API_KEY
 * A Zap built for the original app already sends exactly these names: only apiEndpoint changes.
 * Instead of apiEndpoint/apiKey you may fill ENDPOINT/API_KEY below; Input Data wins when both are set.
 *
 * The app answers 202 (queued) or 200 (already known) within well under a second; this step returns
 * {status, body} then. Anything else (a wrong key, a rejected payload, no answer within TIMEOUT_MS,
 * which stays under the free plan's 1-second limit) throws, so Zapier marks the run as failed and you
 * can replay it: the app recognises an activity it has already seen, so a replay never duplicates it.
 */
const ENDPOINT = '';
const API_KEY = '';
const TIMEOUT_MS = 800;

const endpoint = String(inputData.apiEndpoint || ENDPOINT).trim();
const apiKey = String(inputData.apiKey || API_KEY).trim();

const missing = [];
if (!endpoint) missing.push('apiEndpoint (the /api/runkeeper URL with ?code=)');
if (!apiKey) missing.push('apiKey (your SYNC_API_KEY)');
if (missing.length) {
  throw new Error('runkeeper-strava-sync: set ' + missing.join(' and ') + ' in this step\'s Input Data');
}

let url;
try {
  url = new URL(endpoint);
} catch (e) {
  throw new Error('runkeeper-strava-sync: apiEndpoint is not a URL (expected https://<app>.azurewebsites.net/api/runkeeper?code=...)');
}
if (url.protocol !== 'https:' && url.protocol !== 'http:') {
  throw new Error('runkeeper-strava-sync: apiEndpoint must start with https://');
}
// Messages name the host only: the URL's ?code= is a function key and must not land in Zap history.
const where = url.host;
const scrub = (text) => {
  let out = String(text).split(endpoint).join(where);
  if (apiKey.length >= 8) out = out.split(apiKey).join('***');
  return out.replace(/([?&]code=)[^&\s"']+/gi, '$1***');
};

// Everything the trigger gave, minus the two transport fields: the key travels in the header only.
const payload = {};
for (const [name, value] of Object.entries(inputData)) {
  if (name !== 'apiKey' && name !== 'apiEndpoint') payload[name] = value;
}

const controller = typeof AbortController === 'function' ? new AbortController() : null;
let timer;
const timeout = new Promise((resolve) => {
  timer = setTimeout(() => {
    if (controller) controller.abort();
    resolve(null);
  }, TIMEOUT_MS);
});

const exchange = (async () => {
  const res = await fetch(url.toString(), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Api-Key': apiKey },
    body: JSON.stringify(payload),
    signal: controller ? controller.signal : undefined,
  });
  return { status: res.status, body: await res.text() };
})();

let answer;
try {
  answer = await Promise.race([exchange, timeout]);
} catch (err) {
  if (controller && controller.signal.aborted) answer = null;
  else {
    const reason = err && err.cause && err.cause.code ? err.cause.code : (err && err.message) || err;
    throw new Error('runkeeper-strava-sync: could not reach ' + where + ': ' + scrub(reason));
  }
} finally {
  clearTimeout(timer);
}
exchange.catch(() => {}); // the losing side of the race must not surface as an unhandled rejection

if (answer === null) {
  throw new Error('runkeeper-strava-sync: no answer from ' + where + ' within ' + TIMEOUT_MS
    + ' ms (timed out before Zapier\'s 1 s limit). The activity may not have been received: replay this run.');
}
if (answer.status < 200 || answer.status > 299) {
  throw new Error('runkeeper-strava-sync at ' + where + ' answered HTTP ' + answer.status + ': '
    + scrub(answer.body).slice(0, 1000));
}
return { status: answer.status, body: answer.body };
