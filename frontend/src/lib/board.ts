/** The pipeline board's arithmetic, kept apart from React so that it is unit-tested. */

export interface BoardDeal {
  id: string;
  title: string;
  stage_id: string;
  value: string;
  currency: string;
  status: string;
  client_id: string;
  updated_at: string;
}

export interface StageLike {
  id: string;
  name: string;
  position: number;
}

export interface Column<D extends BoardDeal> {
  stage: StageLike;
  deals: D[];
  /** currency → total in minor-unit-safe decimal string */
  totals: Record<string, string>;
}

/** Add decimal strings exactly (crm2 sends money as strings such as "1234.50"). */
export function addDecimal(a: string, b: string): string {
  const scale = Math.max(decimals(a), decimals(b));
  const sum = toScaled(a, scale) + toScaled(b, scale);
  const negative = sum < 0n;
  const digits = (negative ? -sum : sum).toString().padStart(scale + 1, "0");
  const whole = digits.slice(0, digits.length - scale);
  const fraction = scale ? "." + digits.slice(digits.length - scale) : "";
  return (negative ? "-" : "") + whole + fraction;
}

function decimals(value: string): number {
  const dot = value.indexOf(".");
  return dot < 0 ? 0 : value.length - dot - 1;
}

function toScaled(value: string, scale: number): bigint {
  const negative = value.startsWith("-");
  const [whole = "0", fraction = ""] = value.replace(/^[-+]/, "").split(".");
  const scaled = BigInt(whole + fraction.padEnd(scale, "0"));
  return negative ? -scaled : scaled;
}

export function buildColumns<D extends BoardDeal>(stages: StageLike[], deals: D[]): Column<D>[] {
  const ordered = [...stages].sort((a, b) => a.position - b.position);
  return ordered.map((stage) => {
    const inStage = deals.filter((deal) => deal.stage_id === stage.id);
    const totals: Record<string, string> = {};
    for (const deal of inStage) totals[deal.currency] = addDecimal(totals[deal.currency] ?? "0", deal.value);
    return { stage, deals: inStage, totals };
  });
}

/** The deals list after a live `deals.deal.stage_changed`: the card moves before any refetch. */
export function applyStageChange<D extends BoardDeal>(
  deals: D[],
  dealId: string,
  toStageId: string,
): D[] {
  return deals.map((deal) => (deal.id === dealId ? { ...deal, stage_id: toStageId } : deal));
}
