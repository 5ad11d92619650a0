// The /demo page (a development aid, on only with KINDLING_DEMO; see demo-access.ts): an operator panel on the
// left and, on the right, the streak widget exactly as a member sees it on a brand's page. The panel's calls go
// to /demo/rpc/kindling.v1.<Service>/<Method> (Connect JSON, what Connect-Web sends underneath), which the server
// answers as the ADMIN of its demo tenant: the browser never holds or sends a secret key. The widget is the
// served /widget/kindling-streak.js with a member session the panel mints (CreateMemberSession), reading the
// ordinary API paths as that member and following its events live.
export const DEMO_PAGE = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Kindling demo</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script type="module" src="/widget/kindling-streak.js"></script>
<style>
  * { box-sizing: border-box; }
  body { font: 15px/1.45 system-ui, sans-serif; margin: 0; color: #1f2328; background: #f6f8fa; }
  header { padding: 1rem 1.5rem .5rem; } h1 { font-size: 1.4rem; margin: 0; } h1 span { color: #c2410c; }
  header p { margin: .3rem 0 0; color: #57606a; max-width: 60rem; }
  .layout { display: grid; grid-template-columns: minmax(22rem, 32rem) minmax(20rem, 1fr); gap: 1.5rem; padding: 1rem 1.5rem 2rem; align-items: start; }
  @media (max-width: 52rem) { .layout { grid-template-columns: 1fr; } }
  fieldset { border: 1px solid #d0d7de; border-radius: 10px; margin: 0 0 1rem; padding: .7rem 1rem .9rem; background: #fff; }
  legend { font-weight: 600; padding: 0 .3rem; }
  label { display: inline-flex; flex-direction: column; gap: .15rem; margin: .25rem .8rem .25rem 0; font-size: .85rem; color: #57606a; }
  input, select { font: inherit; color: #1f2328; padding: .25rem .45rem; border: 1px solid #8c959f; border-radius: 6px; background: #fff; }
  button { font: inherit; font-weight: 600; padding: .35rem .9rem; border-radius: 8px; border: 1px solid #c2410c; background: #c2410c; color: #fff; cursor: pointer; margin-top: .4rem; }
  button.secondary { background: #fff; color: #c2410c; }
  button:focus-visible, input:focus-visible, select:focus-visible { outline: 3px solid #1f2328; outline-offset: 2px; }
  .member-view { position: sticky; top: 1rem; }
  .member-view h2 { font-size: 1rem; margin: 0 0 .6rem; color: #57606a; font-weight: 600; }
  .placeholder { border: 2px dashed #d0d7de; border-radius: 12px; padding: 2rem; color: #57606a; max-width: 24rem; }
  details { margin-top: 1rem; } summary { cursor: pointer; color: #57606a; }
  pre { background: #fff; border: 1px solid #d0d7de; border-radius: 8px; padding: .7rem; overflow: auto; max-height: 22rem; font-size: 12px; }
  .status { min-height: 1.3em; margin: .4rem 0 0; font-size: .9rem; }
  .status.error { color: #b42318; } .status.ok { color: #1a7f37; }
  code { background: #eaeef2; padding: 0 .25rem; border-radius: 4px; }
  .note { font-size: .85rem; color: #57606a; margin: .5rem 0 0; }
</style>
</head>
<body>
<header>
  <h1><span>Kindling</span> demo</h1>
  <p>Define a streak, record activity for a member and watch that member's widget change, live. The panel calls
  <code>/demo/rpc/kindling.v1.&lt;Service&gt;/&lt;Method&gt;</code> as the demo tenant's admin (no secret in this page);
  the widget reads <code>/kindling.v1.MemberStreakService/ListMemberStreaks</code> (one GET) with a member session, like on a brand's site.</p>
</header>
<div class="layout">
<main aria-label="Operator panel">
  <fieldset><legend>1 · Define a streak</legend>
    <label>Name <input id="name" value="Daily check-in"></label>
    <label>Period <select id="period"><option value="DAILY">Daily</option><option value="WEEKLY">Weekly</option><option value="MONTHLY">Monthly</option></select></label>
    <label>Time zone <input id="tz" value="UTC" size="14"></label>
    <label>Condition <select id="ctype"><option value="COUNT">Count of activities</option><option value="SUM">Sum of values</option><option value="DISTINCT">Distinct keys</option></select></label>
    <label>At least <input id="cmin" type="number" value="1" min="0.01" step="any" size="6"></label>
    <label>Milestones (claimable points) <input id="milestones" value="2, 7, 30"></label>
    <br><button id="create">Create &amp; publish</button>
    <label>Definition <select id="defs" aria-label="Definition shown in the widget"></select></label>
  </fieldset>
  <fieldset><legend>2 · Record activity</legend>
    <label>Member id <input id="member" value="demo-member"></label>
    <label>Value (SUM) <input id="value" type="number" value="20" step="any" size="6"></label>
    <label>Distinct key <input id="dkey" value="espresso" size="10"></label>
    <br><button id="record">Record activity now</button>
  </fieldset>
  <fieldset><legend>3 · Member session</legend>
    <label>Language <input id="lang" value="en" size="6"></label>
    <label>Currency (SUM) <input id="currency" value="USD" size="6"></label>
    <br><button id="mint" class="secondary">Mint a session &amp; show the widget</button>
    <p class="note">A brand's backend mints it with a SERVICE key (<code>TenantService/CreateMemberSession</code>) and puts it on the page.</p>
  </fieldset>
  <p id="status" class="status" role="status" aria-live="polite"></p>
  <details><summary>Last API response</summary><pre id="out"></pre></details>
</main>
<aside class="member-view" aria-label="What the member sees">
  <h2>What the member sees</h2>
  <div id="slot"><p class="placeholder">Create a definition (or pick one), then mint a member session.</p></div>
</aside>
</div>
<script type="module">
const $ = (id) => document.getElementById(id);
for (const id of ["member", "lang", "currency"]) {
  $(id).value = localStorage.getItem("kindling.demo." + id) || $(id).value;
  $(id).addEventListener("change", () => localStorage.setItem("kindling.demo." + id, $(id).value));
}
function status(text, kind = "") { $("status").textContent = text; $("status").className = "status " + kind; }
async function call(service, method, body) {
  const res = await fetch("/demo/rpc/kindling.v1." + service + "/" + method, {
    method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify(body),
  });
  const json = await res.json().catch(() => ({ message: res.statusText }));
  $("out").textContent = JSON.stringify(json, null, 2);
  if (!res.ok) { status(method + " failed: " + (json.message || res.status), "error"); throw new Error(json.message); }
  return json;
}
let conditions = {};
async function refresh(select) {
  const { definitions = [] } = await call("DefinitionService", "ListDefinitions", { states: ["DEFINITION_STATE_LIVE"] });
  conditions = Object.fromEntries(definitions.map((d) => [d.id, d.condition && d.condition.type]));
  $("defs").replaceChildren(...definitions.map((d) => new Option(d.name, d.id)));
  if (select) $("defs").value = select;
}
async function mint() {
  const definitionId = $("defs").value;
  if (!definitionId) { status("Create a definition first.", "error"); return; }
  const member = $("member").value.trim();
  const { token } = await call("TenantService", "CreateMemberSession", { memberExternalId: member, definitionId });
  const widget = document.createElement("kindling-streak");
  for (const [k, v] of Object.entries({ api: location.origin, definition: definitionId, token, lang: $("lang").value, currency: $("currency").value })) widget.setAttribute(k, v);
  $("slot").replaceChildren(widget);
  status("Showing " + member + "'s widget (session minted for one hour).", "ok");
}
$("create").addEventListener("click", async () => {
  const type = $("ctype").value;
  const thresholds = $("milestones").value.split(",").map((t) => parseInt(t.trim(), 10)).filter((t) => t > 0);
  const { definition } = await call("DefinitionService", "CreateDefinition", { definition: {
    name: $("name").value,
    window: { calendar: { period: "CALENDAR_PERIOD_" + $("period").value, timeZone: $("tz").value, resetTime: "00:00" } },
    condition: { type: "CONDITION_TYPE_" + type, min: Number($("cmin").value) },
    freezePolicy: { maxHeld: 2, initialGrant: 1 },
    milestones: [...new Set(thresholds)].map((t) => ({ threshold: t, reward: { kind: "REWARD_KIND_POINTS", points: t * 10, fulfilmentMode: "FULFILMENT_MODE_CLAIM" } })),
  } });
  await call("DefinitionService", "PublishDefinition", { definitionId: definition.id });
  await refresh(definition.id);
  status("Created and published “" + definition.name + "”.", "ok");
  await mint();
});
$("defs").addEventListener("change", () => void mint());
$("mint").addEventListener("click", () => void mint());
$("record").addEventListener("click", async () => {
  const definitionId = $("defs").value;
  if (!definitionId) { status("Create a definition first.", "error"); return; }
  const activity = { memberExternalId: $("member").value.trim(), definitionId, occurTime: new Date().toISOString(), uniqueIdentifier: "demo-" + Date.now() + "-" + Math.random().toString(36).slice(2, 8) };
  if (conditions[definitionId] === "CONDITION_TYPE_SUM") activity.value = Number($("value").value);
  if (conditions[definitionId] === "CONDITION_TYPE_DISTINCT") activity.distinctKey = $("dkey").value;
  const { results = [] } = await call("ActivityService", "RecordActivity", { activity });
  const r = results[0] || {};
  status(r.applied ? "Recorded: " + (r.message || "applied") + " The widget updates by itself." : "Recorded but not counted: " + (r.message || r.notAppliedReason || ""), r.applied ? "ok" : "error");
});
refresh().then(() => { if ($("defs").value) return mint(); }).catch(() => {});
</script>
</body>
</html>
`;
