import { createStore, type StoreApi } from "zustand/vanilla";
import { csvPreview, type CsvPreview } from "@/lib/csv";
import type { ImportOptions, ImportProgress, ImportReport } from "@/lib/transfer";

export type ImportPhase = "idle" | "checking" | "checked" | "importing" | "done" | "failed";

/**
 * A CSV import as the screen walks it: choose a file → its first rows and the server's
 * dry run (the per-row errors) → import (all rows, or only the good ones when the user
 * says so) → the server's report. Nothing is written before `commit`.
 */
export interface ImportState {
  phase: ImportPhase;
  name: string;
  file: Blob | null;
  preview: CsvPreview | null;
  check: ImportReport | null;
  result: ImportReport | null;
  error: string;
  partial: boolean;
  /** A background import's progress while the server works through a large file. */
  progress: ImportProgress | null;
  setProgress: (progress: ImportProgress | null) => void;
  choose: (file: Blob, name: string) => Promise<void>;
  setPartial: (partial: boolean) => void;
  commit: () => Promise<void>;
  reset: () => void;
}

export type Upload = (file: Blob, options: ImportOptions) => Promise<ImportReport>;

const EMPTY = {
  phase: "idle" as ImportPhase,
  name: "",
  file: null,
  preview: null,
  check: null,
  result: null,
  error: "",
  partial: false,
  progress: null,
};

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Whether `commit` may run: a dry run without errors, or with errors and "only the good rows". */
export function canCommit(state: Pick<ImportState, "phase" | "check" | "partial">): boolean {
  if (state.phase !== "checked" || !state.check) return false;
  const good = state.check.created + state.check.updated;
  return state.check.error_count === 0 ? good > 0 : state.partial && good > 0;
}

/** Reasons per spreadsheet row, for marking the preview's rows. */
export function errorsByRow(report: ImportReport | null): Map<number, string[]> {
  const rows = new Map<number, string[]>();
  for (const error of report?.errors ?? []) rows.set(error.row, [...(rows.get(error.row) ?? []), error.reason]);
  return rows;
}

export function createImportStore(upload: Upload, previewRows = 10): StoreApi<ImportState> {
  return createStore<ImportState>()((set, get) => ({
    ...EMPTY,
    async choose(file, name) {
      set({ ...EMPTY, phase: "checking", file, name });
      try {
        const preview = csvPreview(await file.text(), previewRows);
        if (get().file !== file) return; // another file was chosen meanwhile
        set({ preview });
        const check = await upload(file, { dryRun: true, partial: true });
        if (get().file === file) set({ phase: "checked", check, progress: null });
      } catch (err) {
        if (get().file === file) set({ phase: "failed", error: message(err) });
      }
    },
    setPartial(partial) {
      set({ partial });
    },
    setProgress(progress) {
      set({ progress });
    },
    async commit() {
      const state = get();
      if (!canCommit(state) || !state.file) return;
      set({ phase: "importing", error: "" });
      try {
        const result = await upload(state.file, { dryRun: false, partial: state.partial });
        set({
          phase: result.applied ? "done" : "checked",
          result,
          check: result.applied ? state.check : result,
          progress: null,
        });
      } catch (err) {
        set({ phase: "failed", error: message(err) });
      }
    },
    reset() {
      set({ ...EMPTY });
    },
  }));
}
