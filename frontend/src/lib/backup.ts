/** RPO and RTO as an operator reads them: seconds under two minutes, then minutes, then hours. */
export function duration(seconds: number | null | undefined, locale: string): string {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const format = (value: number, unit: "second" | "minute" | "hour") =>
    new Intl.NumberFormat(locale, { style: "unit", unit, maximumFractionDigits: 1 }).format(value);
  if (seconds < 120) return format(seconds, "second");
  if (seconds < 7200) return format(seconds / 60, "minute");
  return format(seconds / 3600, "hour");
}
