import { describe, expect, it } from "vitest";
import { LIST_SUMMARY_BYTES, rewardLabel, sweeperLabel, type RewardNames } from "../../src/engine/delivery/workflow-labels.ts";

const ids = { tenantId: "t-1", definitionId: "d-1", rewardId: "r-1", memberId: "m-1" };
const reward = (names: Partial<RewardNames>) =>
  rewardLabel({ ...ids, tenantName: "Acme", definitionName: "Daily", rewardName: "", rewardKind: "COUPON", fulfilment: "EXTERNAL", threshold: 7, memberExternalId: "u-1", attempt: 0, ...names });

describe("workflow labels", () => {
  it("summary/longest_names_stay_one_line_under_400_bytes", () => {
    const long = "🔥".repeat(256); // 1,024 bytes each
    const { staticSummary } = reward({ tenantName: long, definitionName: long, memberExternalId: long });
    expect(Buffer.byteLength(staticSummary)).toBeLessThanOrEqual(380);
    expect(staticSummary).toMatch(/^🔥+… · 🔥+… · member 🔥+…/u);
    expect(sweeperLabel({ ...ids, tenantName: `a${"\n".repeat(3)}b\tc`, definitionName: "" }).staticSummary).toBe("a b c · \\(unnamed\\) · window sweeper");
  });

  it("details/names_cannot_inject_markdown_links_or_html", () => {
    const { staticDetails, staticSummary } = reward({ memberExternalId: "[x](https://evil.example)<img>" });
    expect(staticDetails).toContain("Member: \\[x\\]\\(https://evil.example\\)\\<img\\>");
    expect(staticSummary).not.toMatch(/[^\\][[(<]/);
  });

  it("retry/attempt_is_named_in_summary_details_and_memo", () => {
    const label = reward({ attempt: 2 });
    expect(label.staticSummary).toBe("Acme · Daily · member u-1 · COUPON reward at milestone 7 \\(retry 2\\)");
    expect(label.staticDetails).toContain("- Attempt: 2");
    expect(label.memo).toMatchObject({ attempt: 2, summary: label.staticSummary });
  });

  it("list_summary/plain_one_line_text_that_fits_a_keyword_column", () => {
    // The KindlingSummary search attribute is shown as plain text in the UI's list: no markdown escapes, one line,
    // and at most 255 bytes (a Keyword is a VARCHAR(255) in SQL visibility) even for the longest names.
    expect(reward({ memberExternalId: "ella_1001 [vip]" }).listSummary).toBe("Acme · Daily · member ella_1001 [vip] · COUPON reward at milestone 7");
    expect(reward({ attempt: 1 }).listSummary).toBe("Acme · Daily · member u-1 · COUPON reward at milestone 7 (retry 1)");
    expect(sweeperLabel({ ...ids, tenantName: "a\n\tb", definitionName: "" }).listSummary).toBe("a b · (unnamed) · window sweeper");
    const long = "🔥".repeat(256);
    const { listSummary } = reward({ tenantName: long, definitionName: long, memberExternalId: long, rewardKind: "x".repeat(256) });
    expect(Buffer.byteLength(listSummary)).toBeLessThanOrEqual(LIST_SUMMARY_BYTES);
    expect(LIST_SUMMARY_BYTES).toBe(255);
    expect(listSummary).toMatch(/^🔥+… · 🔥+… · member 🔥+… · x+…$/u);
  });
});
