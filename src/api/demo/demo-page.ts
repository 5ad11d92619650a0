// A one-file demo page served at /demo: it talks to the API with plain fetch() using the Connect protocol's JSON
// mapping (exactly what Connect-Web does underneath), so a team evaluating Kindling can define a streak, check a
// member in and watch the progress payload change without writing any code.
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kindling demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
  body { font: 15px/1.45 system-ui, sans-serif; margin: 2rem auto; max-width: 60rem; padding: 0 1rem; color: #222; }
  h1 { font-size: 1.6rem; } h1 span { color: #e8590c; }
  fieldset { border: 1px solid #ddd; border-radius: 8px; margin: 1rem 0; padding: .8rem 1rem; }
  label { display: inline-block; margin: .2rem 1rem .2rem 0; } input, select { font: inherit; padding: .2rem .4rem; }
  button { font: inherit; padding: .3rem .9rem; border-radius: 6px; border: 1px solid #e8590c; background: #fff4e6; cursor: pointer; }
  .streak { font-size: 2.4rem; font-weight: 700; color: #e8590c; } .msg { font-size: 1.1rem; margin: .4rem 0; }
  pre { background: #f8f9fa; border-radius: 6px; padding: .8rem; overflow: auto; max-height: 28rem; font-size: 12px; }
  .err { color: #c92a2a; }
</style>
</head>
<body>
<h1>🔥 <span>Kindling</span> demo</h1>
<p>Create a tenant with <code>npm run create-tenant -- "Demo"</code> and paste its key below.
Every call is a Connect JSON request (<code>POST /kindling.v1.&lt;Service&gt;/&lt;Method&gt;</code>).</p>
<fieldset><legend>Credentials</legend>
  <label>apikey <input id="key" size="24"></label>
  <label>secretkey <input id="secret" size="48" type="password"></label>
</fieldset>
<fieldset><legend>1 · Streak definition</legend>
  <label>Name <input id="name" value="Daily check-in"></label>
  <label>Period <select id="period"><option>DAILY</option><option>WEEKLY</option><option>MONTHLY</option></select></label>
  <label>Time zone <input id="tz" value="UTC" size="16"></label>
  <button id="create">Create &amp; publish</button>
  <label>Definition <select id="defs"></select></label> <button id="refresh">Refresh list</button>
</fieldset>
<fieldset><legend>2 · Member activity</legend>
  <label>Member id <input id="member" value="demo-user"></label>
  <button id="checkin">Check in now</button>
  <button id="read">Read progress</button>
</fieldset>
<div class="streak" id="count"></div>
<div class="msg" id="message"></div>
<pre id="out"></pre>
<script>
const $ = (id) => document.getElementById(id);
for (const id of ["key", "secret", "member"]) { $(id).value = localStorage.getItem("kindling." + id) || $(id).value; $(id).onchange = () => localStorage.setItem("kindling." + id, $(id).value); }
async function call(service, method, body) {
  const res = await fetch("/kindling.v1." + service + "/" + method, {
    method: "POST",
    headers: { "content-type": "application/json", apikey: $("key").value, secretkey: $("secret").value },
    body: JSON.stringify(body),
  });
  const json = await res.json();
  $("out").textContent = JSON.stringify(json, null, 2);
  $("out").className = res.ok ? "" : "err";
  if (!res.ok) throw new Error(json.message);
  return json;
}
async function refresh() {
  const { definitions = [] } = await call("DefinitionService", "ListDefinitions", { states: ["DEFINITION_STATE_LIVE"] });
  $("defs").innerHTML = definitions.map((d) => '<option value="' + d.id + '">' + d.name + "</option>").join("");
}
function show(streak) {
  if (!streak) return;
  $("count").textContent = (streak.currentCount || 0) + " 🔥  (longest " + (streak.longestCount || 0) + ", " + (streak.state || "").replace("MEMBER_STREAK_STATE_", "") + ")";
  $("message").textContent = streak.display ? streak.display.message : "";
}
$("create").onclick = async () => {
  const { definition } = await call("DefinitionService", "CreateDefinition", { definition: {
    name: $("name").value, eventTypes: ["demo.checkin"],
    window: { calendar: { period: "CALENDAR_PERIOD_" + $("period").value, timeZone: $("tz").value, resetTime: "00:00" } },
    condition: { type: "CONDITION_TYPE_COUNT", min: 1 },
    milestones: [3, 7, 30].map((t) => ({ threshold: t, reward: { kind: "REWARD_KIND_POINTS", points: t * 10, fulfilmentMode: "FULFILMENT_MODE_CLAIM" } })),
  } });
  await call("DefinitionService", "PublishDefinition", { definitionId: definition.id });
  await refresh();
  $("defs").value = definition.id;
};
$("refresh").onclick = refresh;
$("checkin").onclick = async () => {
  const r = await call("ActivityService", "RecordActivity", { activity: {
    memberExternalId: $("member").value, definitionId: $("defs").value, uniqueIdentifier: "demo-" + Date.now(),
  } });
  show(r.results && r.results[0] && r.results[0].streak);
};
$("read").onclick = async () => {
  const r = await call("MemberStreakService", "GetMemberStreak", { memberExternalId: $("member").value, definitionId: $("defs").value });
  show(r.streak);
};
</script>
</body>
</html>
`;
