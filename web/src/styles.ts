// The widget's shadow-DOM style sheet. Every colour, the radius and the font are CSS custom properties a host page
// sets on the element (`kindling-streak { --kindling-accent: teal }`); parts are exposed for ::part() too.
export const STYLES = `
:host {
  --_accent: var(--kindling-accent, #c2410c);
  --_accent-fg: var(--kindling-accent-contrast, #ffffff);
  --_bg: var(--kindling-background, #ffffff);
  --_fg: var(--kindling-foreground, #1f2328);
  --_muted: var(--kindling-muted, #57606a);
  --_track: var(--kindling-track, #eaeef2);
  --_risk: var(--kindling-risk, #b42318);
  --_ok: var(--kindling-success, #1a7f37);
  --_border: var(--kindling-border, #d0d7de);
  --_radius: var(--kindling-radius, 12px);
  display: block;
  max-width: var(--kindling-max-width, 24rem);
  font: var(--kindling-font, 15px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif);
  color: var(--_fg);
}
:host([hidden]) { display: none; }
.card { background: var(--_bg); border: 1px solid var(--_border); border-radius: var(--_radius); padding: 1rem 1.1rem; }
h2 { font-size: 1rem; margin: 0 0 .5rem; font-weight: 600; }
.head { display: flex; align-items: center; gap: .8rem; }
.flame { width: 2.8rem; height: 2.8rem; flex: none; transform-origin: 50% 90%; }
.flame .outer { fill: var(--kindling-flame, #f97316); }
.flame .inner { fill: var(--kindling-flame-core, #fde047); }
.status-at-risk .flame, .status-not-started .flame, .status-broken .flame { filter: grayscale(.85); opacity: .7; }
.status-in-progress .flame, .status-completed .flame { animation: flicker 1.6s ease-in-out infinite alternate; }
@keyframes flicker { from { transform: scale(1) rotate(-2deg); } to { transform: scale(1.08) rotate(2deg); } }
@media (prefers-reduced-motion: reduce) { .flame { animation: none !important; } .bar > span { transition: none !important; } }
.count { font-size: 2.2rem; font-weight: 700; line-height: 1; color: var(--_accent); }
.count small { font-size: .95rem; font-weight: 500; color: var(--_muted); margin-left: .25rem; }
.longest { color: var(--_muted); font-size: .9rem; }
.badge-state { display: inline-block; border-radius: 999px; padding: .1rem .6rem; font-size: .8rem; font-weight: 600; border: 1px solid currentColor; }
.status-at-risk .badge-state, .status-broken .badge-state { color: var(--_risk); }
.status-in-progress .badge-state, .status-completed .badge-state { color: var(--_ok); }
.status-not-started .badge-state { color: var(--_muted); }
.countdown { font-variant-numeric: tabular-nums; font-weight: 600; color: var(--_risk); }
.status-in-progress .countdown { color: var(--_muted); font-weight: 500; }
.message { margin: .6rem 0; }
.bar { height: .55rem; background: var(--_track); border-radius: 999px; overflow: hidden; margin: .3rem 0 .2rem; }
.bar > span { display: block; height: 100%; background: var(--_accent); transition: width .4s ease; }
.row { display: flex; justify-content: space-between; gap: .5rem; font-size: .9rem; color: var(--_muted); margin: .15rem 0; }
.row strong { color: var(--_fg); font-weight: 600; white-space: nowrap; }
ul { list-style: none; padding: 0; margin: .3rem 0; }
.badges { display: flex; flex-wrap: wrap; gap: .35rem; }
.badges li { border: 1px solid var(--_border); border-radius: 999px; padding: .1rem .55rem; font-size: .8rem; color: var(--_muted); }
.badges li.earned { border-color: var(--_accent); color: var(--_fg); font-weight: 600; }
.badges img { width: 1rem; height: 1rem; vertical-align: -.15rem; margin-right: .2rem; }
.rewards li { display: flex; align-items: center; justify-content: space-between; gap: .5rem; padding: .3rem 0; border-top: 1px solid var(--_border); }
button { font: inherit; font-weight: 600; cursor: pointer; border-radius: 8px; padding: .3rem .9rem; border: 1px solid var(--_accent); background: var(--_accent); color: var(--_accent-fg); }
button:disabled { opacity: .6; cursor: progress; }
button:focus-visible { outline: 3px solid var(--_fg); outline-offset: 2px; }
.note { font-size: .85rem; margin: .3rem 0 0; min-height: 1.2em; }
.note.error { color: var(--_risk); }
.note.ok { color: var(--_ok); }
.section-title { font-size: .8rem; text-transform: uppercase; letter-spacing: .04em; color: var(--_muted); margin: .7rem 0 .1rem; font-weight: 600; }
.error-box { color: var(--_risk); }
.sr-only { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
`;
