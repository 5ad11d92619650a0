import { describe, expect, it } from "vitest";
import { parseBrowserOrigin } from "../../src/domain/browser-origin.ts";

describe("browser origins", () => {
  const accepted = ["https://shop.example.com", "http://localhost:5173", "http://127.0.0.1:8080", "http://[::1]:3000", "https://xn--bcher-kva.example"];
  for (const origin of accepted) {
    it(`origin/accepts_serialised_${origin}`, () => {
      expect(parseBrowserOrigin(origin)).toEqual({ ok: true, origin });
    });
  }

  const refused: [string, RegExp][] = [
    ["https://shop.example.com/", /use "https:\/\/shop.example.com"/],
    ["https://Shop.example.com", /use "https:\/\/shop.example.com"/],
    ["https://shop.example.com:443", /use "https:\/\/shop.example.com"/],
    ["https://shop.example.com/path", /not in the form/],
    ["ftp://shop.example.com", /http or https/],
    ["https://user:pw@shop.example.com", /credentials/],
    ["shop.example.com", /not an origin/],
    ["*", /not an origin/],
  ];
  for (const [raw, problem] of refused) {
    it(`origin/refuses_${raw}`, () => {
      const parsed = parseBrowserOrigin(raw);
      expect(parsed.ok).toBe(false);
      if (!parsed.ok) expect(parsed.problem).toMatch(problem);
    });
  }
});
