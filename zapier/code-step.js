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
 * A running app answers 202 (queued) or 200 (already known) well within a second; this step returns
 * {status, body} then. Any other answer (a wrong key, a rejected payload) throws, so Zapier marks the
 * run as failed and shows why.
 *
 * An app that was idle (scaled to zero) first has to start, which takes seconds: longer than the free
 * plan's 1-second limit for Code steps. This step never aborts its request: a request cut off while
 * the app starts may never be processed, whereas one left alone is (the app keeps working on a request
 * whose caller has gone). It only stops waiting: with no answer TIMEOUT_MS after the step began, it
 * fails with a message saying the activity was sent and how to check that it arrived. By then the
 * whole request has been written: fetch sends the headers and the body as soon as the connection is
 * open and only then waits for the answer, which is what the app is slow to give (the tests check this
 * with a server that answers after 1.5 s: it receives the whole body even when node exits the moment
 * this step fails). Replaying a run is always safe: the app recognises an activity it already has and
 * never uploads it twice. On a paid plan, where a Code step may run 10 s or more, raise TIMEOUT_MS (to
 * 9000, say) to wait out a cold start instead.
 */
const STARTED = Date.now();
const ENDPOINT = '';
const API_KEY = '';
const TIMEOUT_MS = 900;

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

// Deliberately no AbortController here: once sent, the request is never cut off (see above).
const exchange = (async () => {
  const res = await fetch(url.toString(), {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', 'X-Api-Key': apiKey },
    body: JSON.stringify(payload),
  });
  return { status: res.status, body: await res.text() };
})();
exchange.catch(() => {}); // a late failure, after this step gave up waiting, must not surface as an unhandled rejection

let timer;
const deadline = new Promise((resolve) => {
  timer = setTimeout(() => resolve(null), Math.max(0, TIMEOUT_MS - (Date.now() - STARTED)));
});

let answer;
try {
  answer = await Promise.race([exchange, deadline]);
} catch (err) {
  const reason = err && err.cause && err.cause.code ? err.cause.code : (err && err.message) || err;
  throw new Error('runkeeper-strava-sync: could not reach ' + where + ': ' + scrub(reason));
} finally {
  clearTimeout(timer);
}

if (answer === null) {
  throw new Error('runkeeper-strava-sync: ' + where + ' did not answer within ' + TIMEOUT_MS + ' ms'
    + ' (Zapier\'s free plan stops a Code step at 1 s): the app was most likely starting (a cold start'
    + ' after it was idle takes a few seconds). The activity was sent all the same and will most likely'
    + ' still be processed.'
    + ' To check, in a minute or two: GET ' + url.origin + '/api/activities?code=<function key> with the'
    + ' header X-Api-Key: <your key> lists your recent activities, newest first (see the README,'
    + ' "Status, replay and several athletes"). Replaying this run is always safe: the app recognises'
    + ' an activity it already has and never uploads it twice.');
}
if (answer.status < 200 || answer.status > 299) {
  throw new Error('runkeeper-strava-sync at ' + where + ' answered HTTP ' + answer.status + ': '
    + scrub(answer.body).slice(0, 1000));
}
return { status: answer.status, body: answer.body };
