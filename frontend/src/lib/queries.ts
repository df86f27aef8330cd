"use client";

import { useQuery } from "@tanstack/react-query";
import { api, ok } from "@/api/client";
import type { components } from "@/api/schema";

export type Me = components["schemas"]["Me"];
export type ConsoleManifest = components["schemas"]["ConsoleManifest"];
export type ConsoleViewPublic = components["schemas"]["ConsoleViewPublic"];
export type DealPublic = components["schemas"]["DealPublic"];
export type PipelinePublic = components["schemas"]["PipelinePublic"];

export function useMe() {
  return useQuery({
    queryKey: ["auth", "me"],
    queryFn: async () => ok(await api.GET("/api/v1/auth/me")),
  });
}

export function useViews() {
  return useQuery({
    queryKey: ["console", "views"],
    queryFn: async () => ok(await api.GET("/api/v1/console/views")),
  });
}

/** Where a console view opens: a screen the console has built in, or the generic list. */
export function viewHref(view: Pick<ConsoleViewPublic, "key" | "screen">): string {
  if (view.screen === "deals.board") return "/deals/";
  if (view.screen === "deals.clients") return "/clients/";
  if (view.screen === "notifications.feed") return "/notifications/";
  if (view.screen === "documents.list") return "/documents/";
  if (view.screen === "payments.list") return "/payments/";
  if (view.screen === "backup.sets") return "/backup/";
  return `/view/?key=${encodeURIComponent(view.key)}`;
}

/** Whether the signed-in user holds a permission (the server checks again on every call). */
export function useCan(permission: string): boolean {
  const me = useMe();
  return me.data?.permissions.includes(permission) ?? false;
}

export function viewTitle(view: Pick<ConsoleViewPublic, "title" | "titles">, locale: string): string {
  return view.titles[locale] ?? view.title;
}
