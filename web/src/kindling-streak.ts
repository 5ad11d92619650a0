// <kindling-streak api="https://kindling.example.com" definition="<uuid>" token="<member session>" lang="fr">:
// one member's streak in one definition, live. It reads the progress with one GET (ListMemberStreaks), keeps it
// current by watching the member's events (WatchEvents, Connect server streaming) and re-reading when one arrives,
// ticks the window's countdown locally, and claims rewards as the member (ClaimReward).
//
// Optional attributes: `member` (defaults to the token's `sub`), `currency` (ISO 4217, for SUM conditions),
// `live="off"` (no stream: the element shows the state of its last read until told to `refresh()`). Inside a
// <kindling-streaks> list it is `managed`: the list reads and watches for all its items and calls `show()`.
import { Code, ConnectError } from "@connectrpc/connect";
import type { MemberStreakProgress } from "../../src/gen/kindling/v1/member_streak_pb.js";
import { clientsFor, errorReason, memberOfToken, type KindlingClients } from "./client.ts";
import { coalescedReads, follow } from "./live.ts";
import { claimRefusalText, describeCountdown, formatCountdown, streakView, type StreakView } from "./view.ts";
import { STYLES } from "./styles.ts";


type Child = Node | string | false | undefined;

/** A tiny element builder: text is always set as text, never parsed as HTML. */
export function h(tag: string, attrs: Record<string, string | undefined> = {}, ...children: Child[]): HTMLElement {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined) el.setAttribute(k, v);
  for (const c of children) if (c !== false && c !== undefined) el.append(c);
  return el;
}

const SVG = "http://www.w3.org/2000/svg";

/** The flame as inline SVG: an emoji would depend on the visitor's fonts (and renders as a box without them). */
function flame(): Element {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", "flame");
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("part", "flame");
  for (const [d, cls] of [
    ["M12 1.5c.9 3.4-1 5.6-2.7 7.6C7.7 11 6.5 12.8 6.5 15.2a5.5 5.5 0 0 0 11 0c0-2.6-1.3-4.6-2.7-6.1.1 1.7-.6 3-1.8 3.5.7-3.9-.1-7.8-1-11.1z", "outer"],
    ["M12.3 12.2c.3 1.6-.5 2.5-1.2 3.3-.6.7-1 1.3-1 2.2a2.2 2.2 0 0 0 4.4 0c0-1.3-.8-2.3-1.3-2.9 0 .7-.3 1.1-.7 1.3.2-1.4 0-2.8-.2-3.9z", "inner"],
  ] as const) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    path.setAttribute("class", cls);
    svg.append(path);
  }
  return svg;
}

function present(...children: Child[]): (Node | string)[] {
  return children.filter((c): c is Node | string => c !== false && c !== undefined);
}

/**
 * Why the first read failed, for the member. A Kindling refusal carries a reason; a request the browser itself
 * refused (no CORS grant for this page's origin, network down) reaches the code as a bare fetch failure.
 */
export function loadFailureText(error: unknown): string {
  if (error instanceof ConnectError && errorReason(error) !== undefined) return `Could not load the streak: ${error.rawMessage}`;
  if (error instanceof ConnectError && (error.code === Code.Unknown || error.code === Code.Unavailable)) {
    return "Could not reach Kindling from this page (is the site's origin allowed for this tenant?).";
  }
  return `Could not load the streak: ${error instanceof ConnectError ? error.rawMessage : String(error)}`;
}

export class KindlingStreakElement extends HTMLElement {
  static readonly observedAttributes = ["api", "definition", "token", "lang", "member", "currency", "live"];

  readonly #root: ShadowRoot;
  readonly #content: HTMLElement;
  readonly #card: HTMLElement;
  readonly #note: HTMLElement;
  #session: AbortController | undefined;
  #progress: MemberStreakProgress | undefined;
  readonly #coalescedRead = coalescedReads(() => this.#readOnce());
  #deadline: number | undefined;
  #ticker: ReturnType<typeof setInterval> | undefined;
  #countdown: HTMLElement | undefined;
  #restart: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    this.#root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = STYLES;
    this.#content = h("div", { class: "content" }, h("p", { class: "loading" }, "Loading streak…"));
    this.#note = h("p", { class: "note", role: "status", "aria-live": "polite", part: "note" });
    this.#card = h("section", { class: "card", part: "card", "aria-busy": "true", "aria-label": "Streak" }, this.#content, this.#note);
    this.#root.append(style, this.#card);
  }

  connectedCallback(): void {
    // An upgraded element gets attributeChangedCallback for each parsed attribute just before this: #start reads
    // the current attributes, so a restart they scheduled would only read a second time.
    clearTimeout(this.#restart);
    this.#start();
  }

  disconnectedCallback(): void {
    this.#stop();
  }

  attributeChangedCallback(_name: string, old: string | null, value: string | null): void {
    if (old !== value && this.isConnected) {
      // Coalesce several attribute changes made in one task into one restart.
      clearTimeout(this.#restart);
      this.#restart = setTimeout(() => this.#start(), 0);
    }
  }

  /** The last progress read, for host pages that want more than the element shows. */
  get progress(): MemberStreakProgress | undefined {
    return this.#progress;
  }

  /** Reads the progress again now. */
  refresh(): Promise<void> {
    return this.#read();
  }

  get #config() {
    const token = this.getAttribute("token") ?? "";
    return {
      api: this.getAttribute("api") ?? "",
      definition: this.getAttribute("definition") ?? "",
      token,
      member: this.getAttribute("member") || memberOfToken(token) || "",
      lang: this.getAttribute("lang") || document.documentElement.lang || navigator.language || "en",
      currency: this.getAttribute("currency") || undefined,
      live: this.getAttribute("live") !== "off",
    };
  }

  get #clients(): KindlingClients {
    const { api, token } = this.#config;
    return clientsFor(api, token);
  }

  /** Shows a progress read by someone else (the <kindling-streaks> list, which reads and watches for its items). */
  show(progress: MemberStreakProgress): void {
    this.#progress = progress;
    this.#render(streakView(progress, { lang: this.#config.lang, currency: this.#config.currency }));
  }

  /** Managed by a list: the element neither reads nor watches; when it needs fresh data it asks (kindling-stale). */
  get #managed(): boolean {
    return this.hasAttribute("managed");
  }

  #start(): void {
    this.#stop();
    if (this.#managed) {
      // A list moves its cards (replaceChildren detaches and re-attaches them): resume the countdown it showed.
      this.#startTicker();
      return;
    }
    const config = this.#config;
    const missing: string[] = (["api", "definition", "token"] as const).filter((k) => !config[k]);
    if (!config.member && config.token) missing.push("member");
    if (missing.length > 0) {
      this.#showError(`Missing ${missing.join(", ")}: set the attribute${missing.length > 1 ? "s" : ""} on <kindling-streak>.`);
      return;
    }
    const session = new AbortController();
    this.#session = session;
    void this.#read().then(() => {
      if (config.live && !session.signal.aborted) void this.#watch(session.signal);
    });
  }

  #stop(): void {
    this.#session?.abort();
    this.#session = undefined;
    clearInterval(this.#ticker);
    this.#ticker = undefined;
  }

  /**
   * One read at a time; reads asked for during another run once right after it, and every caller's promise
   * settles when a read that started after its call has finished.
   */
  #read(): Promise<void> {
    if (this.#managed) {
      this.dispatchEvent(new Event("kindling-stale", { bubbles: true }));
      return Promise.resolve();
    }
    return this.#coalescedRead();
  }

  async #readOnce(): Promise<void> {
    const { definition, member, lang } = this.#config;
    const language = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang) ? lang : "";
    try {
      // One request per read in every case: ListMemberStreaks with the not-started views covers both a member with
      // a record (GetMemberStreak's view) and one with no activity yet (the definition's rules and rendered
      // labels), and its URL is the same on every read (a cacheable GET, one preflight). The server sorts by
      // definition and a session scoped to this definition lists only it; another page is read only past 1000.
      let progress: MemberStreakProgress | undefined;
      let pageToken = "";
      do {
        const list = await this.#clients.streaks.listMemberStreaks({ memberExternalId: member, language, includeNotStarted: true, pageSize: 1000, pageToken });
        progress = list.streaks.find((s) => s.definitionId === definition);
        const last = list.streaks.at(-1)?.definitionId;
        pageToken = progress || last === undefined || last > definition ? "" : list.nextPageToken;
      } while (!progress && pageToken !== "");
      if (!progress) throw new ConnectError(`The streak ${definition} is not available to this member.`, Code.NotFound);
      if (!progress) return;
      this.#progress = progress;
      this.#render(streakView(progress, { lang: lang, currency: this.#config.currency }));
      this.dispatchEvent(new CustomEvent("kindling-update", { detail: progress, bubbles: true, composed: true }));
    } catch (error) {
      if (!this.#progress) this.#showError(loadFailureText(error));
      this.dispatchEvent(new CustomEvent("kindling-error", { detail: error, bubbles: true, composed: true }));
    }
  }

  async #watch(signal: AbortSignal): Promise<void> {
    const { definition, member } = this.#config;
    await follow(this.#clients, { memberExternalId: member, definitionId: definition }, this, () => this.#read(), signal);
  }

  async #claim(rewardId: string, button: HTMLButtonElement): Promise<void> {
    button.disabled = true;
    this.#setNote("", "");
    try {
      const res = await this.#clients.rewards.claimReward({ target: { case: "rewardId", value: rewardId } });
      const label = res.bonusPoints > 0 ? `+${res.bonusPoints} points` : res.reward?.name || res.reward?.value || "Reward";
      this.#setNote(`Claimed: ${label}.`, "ok");
      await this.#read();
    } catch (error) {
      this.#setNote(claimRefusalText(errorReason(error), error instanceof ConnectError ? error.rawMessage : String(error)), "error");
      button.disabled = false;
      // A refusal means this view is stale (claimed in another tab, expired): show what is claimable now.
      if (errorReason(error) !== undefined) await this.#read();
    }
  }

  #setNote(text: string, kind: "ok" | "error" | ""): void {
    this.#note.textContent = text;
    this.#note.className = `note ${kind}`;
  }

  #showError(text: string): void {
    this.#card.setAttribute("aria-busy", "false");
    this.#content.replaceChildren(h("p", { class: "error-box", role: "alert" }, text));
  }

  #render(v: StreakView): void {
    const focusedReward = (this.#root.activeElement as HTMLElement | null)?.dataset?.reward;
    this.#card.className = `card status-${v.status}`;
    this.#card.setAttribute("aria-busy", "false");
    this.#card.setAttribute("aria-label", `Streak: ${v.title}`);
    this.setAttribute("data-status", v.status);

    const periods = (n: number) => `${n} period${n === 1 ? "" : "s"}`;
    this.#countdown = v.secondsToClose !== undefined ? h("span", { class: "countdown", role: "timer", part: "countdown" }) : undefined;
    const percent = v.window ? Math.min(100, Math.round((v.window.value / v.window.target) * 100)) : 0;

    this.#content.replaceChildren(
      ...present(
      h("h2", { part: "title" }, v.title),
      h(
        "div",
        { class: "head" },
        flame(),
        h("div", {}, h("div", { class: "count", part: "count" }, String(v.count), h("small", {}, v.unit)), h("div", { class: "longest" }, `Longest: ${v.longest}`)),
      ),
      h("p", {}, h("span", { class: "badge-state", part: "status" }, v.statusLabel), this.#countdown && " ", this.#countdown && h("span", { class: "closes" }, "Window closes in "), this.#countdown),
      v.message !== "" && h("p", { class: "message", part: "message" }, v.message),
      v.window &&
        h(
          "div",
          { class: "window" },
          h("div", { class: "row" }, h("span", { id: "window-label" }, "This period"), h("strong", {}, v.window.text)),
          h(
            "div",
            { class: "bar", role: "progressbar", "aria-labelledby": "window-label", "aria-valuemin": "0", "aria-valuemax": String(v.window.target), "aria-valuenow": String(Math.min(v.window.value, v.window.target)), "aria-valuetext": v.window.text },
            h("span", { style: `width:${percent}%` }),
          ),
        ),
      v.nextMilestone &&
        h("div", { class: "row" }, h("span", {}, `Next milestone: ${v.nextMilestone.name}`), h("strong", {}, `${periods(v.nextMilestone.periodsToGo)} to go`)),
      h("div", { class: "row" }, h("span", {}, "Freezes held"), h("strong", {}, String(v.freezes))),
      v.badges.length > 0 && h("p", { class: "section-title", id: "badges-title" }, "Badges"),
      v.badges.length > 0 &&
        h(
          "ul",
          { class: "badges", "aria-labelledby": "badges-title" },
          ...v.badges.map((b) =>
            h(
              "li",
              { class: b.earned ? "earned" : "locked" },
              b.imageUrl ? h("img", { src: b.imageUrl, alt: "" }) : undefined,
              `${b.name} `,
              h("span", { class: "sr-only" }, b.earned ? "(earned)" : `(not yet earned, at ${b.threshold})`),
              h("span", { "aria-hidden": "true" }, b.earned ? "✓" : `· ${b.threshold}`),
            ),
          ),
        ),
      v.rewards.length > 0 && h("p", { class: "section-title", id: "rewards-title" }, "Rewards to claim"),
      v.rewards.length > 0 &&
        h(
          "ul",
          { class: "rewards", "aria-labelledby": "rewards-title" },
          ...v.rewards.map((r) => {
            const button = h("button", { type: "button", part: "claim", "data-reward": r.rewardId, "aria-label": `Claim ${r.label} (milestone ${r.threshold})` }, "Claim") as HTMLButtonElement;
            button.addEventListener("click", () => void this.#claim(r.rewardId, button));
            return h("li", {}, h("span", {}, `${r.label} `, h("small", {}, `· milestone ${r.threshold}`)), button);
          }),
        ),
      ),
    );
    if (focusedReward) this.#root.querySelector<HTMLElement>(`[data-reward="${CSS.escape(focusedReward)}"]`)?.focus();

    this.#deadline = v.secondsToClose !== undefined ? performance.now() + v.secondsToClose * 1000 : undefined;
    this.#startTicker();
  }

  /** (Re)starts the countdown's one-second ticker, if the last view has a window closing (and only one ticker). */
  #startTicker(): void {
    clearInterval(this.#ticker);
    this.#ticker = undefined;
    if (this.#deadline === undefined || !this.#countdown) return;
    this.#tick();
    if (this.#deadline !== undefined) this.#ticker = setInterval(() => this.#tick(), 1000);
  }

  /** Counts down from the read's seconds_until_window_close on the page's monotonic clock (immune to a wrong
   * wall clock); at zero the window has closed, so the state is read again. */
  #tick(): void {
    if (this.#deadline === undefined || !this.#countdown) return;
    const left = (this.#deadline - performance.now()) / 1000;
    this.#countdown.textContent = formatCountdown(left);
    this.#countdown.setAttribute("aria-label", describeCountdown(left));
    if (left <= 0) {
      clearInterval(this.#ticker);
      this.#ticker = undefined;
      this.#deadline = undefined;
      void this.#read();
    }
  }
}

export function defineKindlingStreak(): void {
  if (!customElements.get("kindling-streak")) customElements.define("kindling-streak", KindlingStreakElement);
}
