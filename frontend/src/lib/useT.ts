"use client";

import { useCallback } from "react";
import { translate, type MessageKey } from "@/lib/i18n";
import { useUi } from "@/store/ui";

export function useT() {
  const locale = useUi((s) => s.locale);
  return useCallback(
    (key: MessageKey, params?: Record<string, string>) => translate(locale, key, params),
    [locale],
  );
}
