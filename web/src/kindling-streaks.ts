// <kindling-streaks api="…" token="<member session>" lang="…">: every streak available to a member, each drawn by
// a <kindling-streak> card. One read for all of them (ListMemberStreaks with the LIVE definitions the member has not
// started), one event stream for the member (WatchEvents without a definition filter), re-read on each event; the
// cards only draw (`managed`) and ask the list to re-read when they need it (a claim, a window closing).
// The session must cover every definition (minted without definition_id). Optional: `member`, `currency`,
// `live="off"`.
import { ConnectError } from "@connectrpc/connect";
import { clientsFor, memberOfToken } from "./client.ts";
import { coalescedReads, follow } from "./live.ts";
import { h, KindlingStreakElement } from "./kindling-streak.ts";

const LIST_STYLES = `
:host { display: block; }
:host([hidden]) { display: none; }
ul { list-style: none; margin: 0; padding: 0; display: grid; gap: var(--kindling-gap, 1rem); grid-template-columns: repeat(auto-fill, minmax(var(--kindling-min-width, 18rem), 1fr)); align-items: start; }
.empty, .error { font: var(--kindling-font, 15px/1.45 system-ui, sans-serif); color: var(--kindling-muted, #57606a); }
.error { color: var(--kindling-risk, #b42318); }
`;

export class KindlingStreaksElement extends HTMLElement {
  static readonly observedAttributes = ["api", "token", "lang", "member", "currency", "live"];

  readonly #list: HTMLElement;
  readonly #message: HTMLElement;
  #session: AbortController | undefined;
  readonly #coalescedRead = coalescedReads(() => this.#readOnce());
  #restart: ReturnType<typeof setTimeout> | undefined;

  constructor() {
    super();
    const root = this.attachShadow({ mode: "open" });
    const style = document.createElement("style");
    style.textContent = LIST_STYLES;
    this.#list = h("ul", { part: "list", "aria-label": "Your streaks" });
    this.#message = h("p", { class: "empty", role: "status" }, "Loading streaks…");
    root.append(style, this.#message, this.#list);
    // A card that needs fresh data (after a claim, when its window closes) asks the list.
    root.addEventListener("kindling-stale", () => void this.refresh());
  }

  connectedCallback(): void {
    // An upgraded element gets attributeChangedCallback for each parsed attribute just before this: #start reads
    // the current attributes, so a restart they scheduled would only read a second time.
    clearTimeout(this.#restart);
    this.#start();
  }

  disconnectedCallback(): void {
    this.#session?.abort();
  }

  attributeChangedCallback(_name: string, old: string | null, value: string | null): void {
    if (old !== value && this.isConnected) {
      clearTimeout(this.#restart);
      this.#restart = setTimeout(() => this.#start(), 0);
    }
  }

  get #config() {
    const token = this.getAttribute("token") ?? "";
    return {
      api: this.getAttribute("api") ?? "",
      token,
      member: this.getAttribute("member") || memberOfToken(token) || "",
      lang: this.getAttribute("lang") || document.documentElement.lang || navigator.language || "en",
      currency: this.getAttribute("currency") ?? "",
      live: this.getAttribute("live") !== "off",
    };
  }

  #start(): void {
    this.#session?.abort();
    const config = this.#config;
    if (!config.api || !config.token || !config.member) {
      this.#message.className = "error";
      this.#message.textContent = "Missing api or token: set the attributes on <kindling-streaks>.";
      return;
    }
    const session = new AbortController();
    this.#session = session;
    void this.refresh().then(() => {
      if (config.live && !session.signal.aborted) void follow(clientsFor(config.api, config.token), { memberExternalId: config.member, definitionId: "" }, this, () => this.refresh(), session.signal);
    });
  }

  /** Reads every streak again (one request); concurrent calls share a read, as in <kindling-streak>. */
  refresh(): Promise<void> {
    return this.#coalescedRead();
  }

  async #readOnce(): Promise<void> {
    const { api, token, member, lang, currency } = this.#config;
    const language = /^[A-Za-z]{2,3}(-[A-Za-z0-9]{1,8})*$/.test(lang) ? lang : "";
    try {
      const { streaks } = await clientsFor(api, token).streaks.listMemberStreaks({ memberExternalId: member, language, includeNotStarted: true, pageSize: 100 });
      const cards = new Map([...this.#list.querySelectorAll<KindlingStreakElement>("kindling-streak")].map((el) => [el.getAttribute("definition"), el]));
      const items = streaks.map((progress) => {
        let card = cards.get(progress.definitionId);
        if (!card) {
          card = document.createElement("kindling-streak") as KindlingStreakElement;
          for (const [k, v] of Object.entries({ managed: "", api, token, member, lang, currency, definition: progress.definitionId })) card.setAttribute(k, v);
        }
        card.show(progress);
        return card.parentElement ?? h("li", {}, card);
      });
      this.#list.replaceChildren(...items);
      this.#message.className = "empty";
      this.#message.textContent = streaks.length === 0 ? "No streaks yet." : "";
      this.dispatchEvent(new CustomEvent("kindling-update", { detail: streaks, bubbles: true, composed: true }));
    } catch (error) {
      this.#message.className = "error";
      this.#message.textContent = `Could not load the streaks: ${error instanceof ConnectError ? error.rawMessage : String(error)}`;
      this.dispatchEvent(new CustomEvent("kindling-error", { detail: error, bubbles: true, composed: true }));
    }
  }
}

export function defineKindlingStreaks(): void {
  if (!customElements.get("kindling-streaks")) customElements.define("kindling-streaks", KindlingStreaksElement);
}
